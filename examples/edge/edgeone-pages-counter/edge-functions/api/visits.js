// EdgeOne Pages edge function: GET /api/visits?page=NAME counts a visit to NAME and returns the
// count. `visits_kv` is the namespace's binding variable: a global on the runtime, not context.env.
// KV keys on EdgeOne may hold only letters, digits and underscores, hence the key mapping.

export async function onRequest({ request }) {
  const page = new URL(request.url).searchParams.get("page") || "home";
  const key = `visits_${page.replace(/[^A-Za-z0-9_]/g, "_")}`.slice(0, 512);
  const previous = await visits_kv.get(key); // null the first time
  const visits = (Number.parseInt(previous ?? "0", 10) || 0) + 1;
  await visits_kv.put(key, String(visits));
  return new Response(JSON.stringify({ page, visits }), {
    headers: { "content-type": "application/json" },
  });
}
