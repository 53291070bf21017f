// ESA Edge Routine: a redirect table kept in Edge KV. Each rule is one key in namespace
// "redirects": the request path with "/" turned into "__" (ESA keys may not contain "/"), whose
// value is JSON { "location": URL, "status": 301|302 }. Every hit also bumps a "hits__" counter.

const NAMESPACE = "redirects";

export const ruleKey = (pathname) => pathname.replace(/^\/+|\/+$/g, "").replaceAll("/", "__") || "__root";

export default {
  async fetch(request) {
    const kv = new EdgeKV({ namespace: NAMESPACE });
    const key = ruleKey(new URL(request.url).pathname);
    const rule = await kv.get(key, { type: "json" }); // undefined when there is no rule
    if (rule === undefined) return new Response("no redirect for this path", { status: 404 });
    const hits = Number((await kv.get(`hits__${key}`, { type: "text" })) ?? 0) + 1;
    await kv.put(`hits__${key}`, String(hits));
    return new Response(null, { status: rule.status ?? 302, headers: { location: rule.location } });
  },
};
