package dev.kvmux.junit;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * {@code @ExtendWith(KvmuxExtension.class)}: one kvmux per test class (binary: the kvmux.bin
 * system property, $KVMUX_BIN, else PATH), injected as a {@link KvmuxServer} parameter into
 * constructors, {@code @BeforeAll}, {@code @BeforeEach} and test methods, reset to empty before
 * each test (seed in {@code @BeforeEach}, or checkpoint in {@code @BeforeAll} and restore), and
 * stopped after the class.
 */
public class KvmuxExtension implements BeforeAllCallback, BeforeEachCallback, ParameterResolver {
    private static final ExtensionContext.Namespace NAMESPACE =
        ExtensionContext.Namespace.create(KvmuxExtension.class);
    private static final String KEY = "server";

    /** Closes the server when its class's context closes. */
    private record Handle(KvmuxServer server) implements ExtensionContext.Store.CloseableResource {
        @Override
        public void close() {
            server.stop();
        }
    }

    private static KvmuxServer server(ExtensionContext context) {
        // The class context owns it; method contexts find it through their parent store.
        ExtensionContext owner = context;
        while (owner.getTestMethod().isPresent() && owner.getParent().isPresent()) {
            owner = owner.getParent().get();
        }
        return owner.getStore(NAMESPACE)
            .getOrComputeIfAbsent(KEY, k -> new Handle(KvmuxServer.start()), Handle.class).server();
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        server(context);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        server(context).reset();
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == KvmuxServer.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return server(context);
    }
}
