package dev.kvmux.junit;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A running kvmux gateway: memory store, a free 127.0.0.1 port, the built-in dev credentials.
 * {@link KvmuxExtension} starts one per test class; {@link #start()} starts one by hand.
 */
public final class KvmuxServer implements AutoCloseable {
    /** The secret of the built-in dev credentials (all reach account "dev"). */
    public static final String DEV_SECRET = "kvmuxdevsecret";
    /** The built-in dev key ids per dialect. */
    public static final Map<String, String> DEV_IDS =
        Map.of("tencent", "AKIDkvmuxdev", "aliyun", "LTAIkvmuxdev", "huawei", "HWkvmuxdev");

    private final Process process;
    private final Path dir;
    private final String url;
    private final String host;
    private final String version;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private KvmuxServer(Process process, Path dir, String url, String host, String version) {
        this.process = process;
        this.dir = dir;
        this.url = url;
        this.host = host;
        this.version = version;
    }

    /** The binary: the kvmux.bin system property, else $KVMUX_BIN, else kvmux on PATH. */
    public static String binary() {
        String bin = System.getProperty("kvmux.bin");
        if (bin == null || bin.isEmpty()) {
            bin = System.getenv("KVMUX_BIN");
        }
        return bin == null || bin.isEmpty() ? "kvmux" : bin;
    }

    /** Starts kvmux with the built-in defaults. */
    public static KvmuxServer start() {
        return start(binary(), null, List.of());
    }

    /**
     * Starts {@code binary serve --storage memory --listen 127.0.0.1:0 --ready-file F}, with
     * {@code --config config} when config is not null, and extra flags; waits up to 10 s.
     */
    public static KvmuxServer start(String binary, Path config, List<String> extraArgs) {
        Path dir = null;
        Process process = null;
        try {
            dir = Files.createTempDirectory("kvmux-");
            Path ready = dir.resolve("ready.json");
            Path log = dir.resolve("kvmux.log");
            List<String> cmd = new ArrayList<>(List.of(binary, "serve", "--storage", "memory",
                "--listen", "127.0.0.1:0", "--ready-file", ready.toString()));
            if (config != null) {
                cmd.add("--config");
                cmd.add(config.toAbsolutePath().toString());
            }
            cmd.addAll(extraArgs);
            // The temp dir as working directory: a config/kvmux.toml beside the tests is not read.
            process = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (true) {
                if (Files.exists(ready)) {
                    String info = Files.readString(ready);
                    String pid = field(info, "pid");
                    if (pid != null && Long.parseLong(pid) == process.pid()) {
                        return new KvmuxServer(process, dir, field(info, "url"), field(info, "host"),
                            field(info, "version"));
                    }
                }
                if (!process.isAlive() || System.nanoTime() > deadline) {
                    String why = process.isAlive() ? "wrote no ready file within 10 s"
                        : "exited with " + process.exitValue();
                    throw new IllegalStateException("kvmux " + why + " (" + String.join(" ", cmd) + "):\n"
                        + Files.readString(log));
                }
                Thread.sleep(5);
            }
        } catch (IOException e) {
            cleanUp(process, dir);
            throw new IllegalStateException("cannot start kvmux " + binary
                + " (set KVMUX_BIN or put kvmux on PATH): " + e.getMessage(), e);
        } catch (InterruptedException e) {
            cleanUp(process, dir);
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (RuntimeException e) {
            cleanUp(process, dir);
            throw e;
        }
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*(?:\"([^\"]*)\"|(-?\\d+))").matcher(json);
        return m.find() ? (m.group(1) != null ? m.group(1) : m.group(2)) : null;
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    /** "http://127.0.0.1:PORT". */
    public String url() {
        return url;
    }

    /** "127.0.0.1:PORT": what the SDKs' endpoint settings take. */
    public String host() {
        return host;
    }

    public long pid() {
        return process.pid();
    }

    public String version() {
        return version;
    }

    /** {id, secret} of the dev credentials of a dialect (tencent, aliyun, huawei). */
    public String[] credentials(String dialect) {
        String id = DEV_IDS.get(dialect.toLowerCase(Locale.ROOT));
        if (id == null) {
            throw new IllegalArgumentException("unknown dialect " + dialect + ": tencent, aliyun or huawei");
        }
        return new String[] {id, DEV_SECRET};
    }

    /** Calls the admin API with a JSON body (null: "{}" for writes); returns the reply body. */
    public String admin(String method, String path, String jsonBody) {
        String body = jsonBody != null ? jsonBody : ("GET".equals(method) ? "" : "{}");
        HttpRequest req = HttpRequest.newBuilder(URI.create(url + path))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .method(method, body.isEmpty() ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body)).build();
        try {
            HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() / 100 != 2) {
                throw new IllegalStateException("kvmux " + method + " " + path + ": " + resp.statusCode()
                    + " " + resp.body());
            }
            return resp.body();
        } catch (IOException e) {
            throw new IllegalStateException("kvmux " + method + " " + path + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Drops all data. */
    public void reset() {
        admin("POST", "/_kvmux/reset", "{}");
    }

    /** Drops one scope's data; null fields mean all. */
    public void reset(String account, String dialect, String container) {
        List<String> fields = new ArrayList<>();
        if (account != null) {
            fields.add("\"account\":" + quote(account));
        }
        if (dialect != null) {
            fields.add("\"dialect\":" + quote(dialect));
        }
        if (container != null) {
            fields.add("\"container\":" + quote(container));
        }
        admin("POST", "/_kvmux/reset", "{" + String.join(",", fields) + "}");
    }

    private static String segment(String name) {
        return URLEncoder.encode(name, StandardCharsets.UTF_8).replace("+", "%20");
    }

    public void checkpoint(String name) {
        admin("PUT", "/_kvmux/checkpoints/" + segment(name), null);
    }

    public void restore(String name) {
        admin("POST", "/_kvmux/checkpoints/" + segment(name) + "/restore", null);
    }

    /** Moves the engine clock forward; returns the engine's new unix time. */
    public long advanceClock(long seconds) {
        return Long.parseLong(field(admin("POST", "/_kvmux/clock/advance", "{\"seconds\":" + seconds + "}"), "now"));
    }

    public void addCredentials(String dialect, String id, String secret, String account) {
        admin("POST", "/_kvmux/credentials", "{\"dialect\":" + quote(dialect.toLowerCase(Locale.ROOT))
            + ",\"id\":" + quote(id) + ",\"secret\":" + quote(secret) + ",\"account\":" + quote(account) + "}");
    }

    /** kvmux's output so far. */
    public String log() {
        try {
            return Files.readString(dir.resolve("kvmux.log"));
        } catch (IOException e) {
            return "";
        }
    }

    /** SIGTERM, SIGKILL after 15 s; removes the temp dir. Idempotent. */
    public void stop() {
        cleanUp(process, dir);
    }

    @Override
    public void close() {
        stop();
    }

    private static void cleanUp(Process process, Path dir) {
        if (process != null && process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(15, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (dir != null && Files.exists(dir)) {
            try (Stream<Path> paths = Files.walk(dir)) {
                paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException ignored) {
                // a temp dir left behind is not worth failing a test run
            }
        }
    }
}
