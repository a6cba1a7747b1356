package dev.ferry.store;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP relay on 127.0.0.1 in front of another local port (an S3Proxy), which can be made to fail the way a
 * network does:
 * <ul>
 *   <li>{@link #down()}: the endpoint is gone. The listening socket is closed, so new connections are refused,
 *       and every open connection is reset. {@link #up()} listens again on the same port. The port is chosen
 *       below the kernel's range of ephemeral ports, so that no outgoing connection takes it meanwhile;</li>
 *   <li>{@link #stallConnections(int, long)}: the next connections accepted pass the request on, but stop
 *       forwarding the answer after some bytes, and then stay open and silent, as a connection whose other end
 *       went away without a word.</li>
 * </ul>
 */
final class FaultInjectingProxy implements AutoCloseable {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    /** Ports tried for listening: below the usual ephemeral range (32768 and up), above the well-known ports. */
    private static final int LOW_PORT = 20_000;
    private static final int HIGH_PORT = 32_000;

    private final int target;
    private final int port;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger threads = new AtomicInteger();
    private final AtomicInteger accepted = new AtomicInteger();
    private final AtomicInteger stallsLeft = new AtomicInteger();
    private final AtomicLong stallAfter = new AtomicLong();
    private final AtomicInteger stalled = new AtomicInteger();
    /** Counted down once for good when the proxy is closed: stalled pumps wait on it. */
    private final CountDownLatch closing = new CountDownLatch(1);
    private final Object listenerLock = new Object();
    private ServerSocket listener; // guarded by listenerLock; null while down
    private boolean closed; // guarded by listenerLock

    FaultInjectingProxy(int target) throws IOException {
        this.target = target;
        Random random = new Random();
        ServerSocket socket = null;
        IOException last = null;
        for (int i = 0; i < 200 && socket == null; i++) {
            int candidate = LOW_PORT + random.nextInt(HIGH_PORT - LOW_PORT);
            try {
                socket = bind(candidate);
            } catch (BindException e) {
                last = e;
            }
        }
        if (socket == null) {
            throw new IOException("no free port between " + LOW_PORT + " and " + HIGH_PORT, last);
        }
        ServerSocket bound = socket;
        this.port = bound.getLocalPort();
        synchronized (listenerLock) {
            listener = bound;
        }
        start("accept", () -> acceptLoop(bound));
    }

    private static ServerSocket bind(int port) throws IOException {
        ServerSocket socket = new ServerSocket();
        try {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(LOOPBACK, port), 50);
            return socket;
        } catch (IOException e) {
            socket.close();
            throw e;
        }
    }

    int port() {
        return port;
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + port);
    }

    /** Connections accepted so far. */
    int accepted() {
        return accepted.get();
    }

    /** Answers cut off so far by {@link #stallConnections}. */
    int stalled() {
        return stalled.get();
    }

    /** Refuses new connections and resets every open one, until {@link #up()}. */
    void down() throws IOException {
        synchronized (listenerLock) {
            if (listener != null) {
                listener.close();
                listener = null;
            }
        }
        for (Socket socket : sockets) {
            reset(socket);
        }
        sockets.clear();
    }

    /** Listens again on the same port. */
    void up() throws IOException, InterruptedException {
        synchronized (listenerLock) {
            if (closed || listener != null) {
                return;
            }
            BindException failure = null;
            for (int i = 0; i < 50; i++) { // a port is usually free again at once; give the kernel a moment if not
                try {
                    ServerSocket socket = bind(port);
                    listener = socket;
                    start("accept", () -> acceptLoop(socket));
                    return;
                } catch (BindException e) {
                    failure = e;
                    TimeUnit.MILLISECONDS.sleep(100);
                }
            }
            throw new IOException("cannot listen on 127.0.0.1:" + port + " again", failure);
        }
    }

    /**
     * The next {@code connections} connections accepted forward only the first {@code afterBytes} bytes of what
     * the server sends back, then nothing more, and stay open.
     */
    void stallConnections(int connections, long afterBytes) {
        stallAfter.set(afterBytes);
        stallsLeft.set(connections);
    }

    private void start(String name, Runnable task) {
        Thread thread = new Thread(task, "fault-proxy-" + name + "-" + threads.incrementAndGet());
        thread.setDaemon(true);
        thread.start();
    }

    private void acceptLoop(ServerSocket server) {
        try {
            while (true) {
                Socket client = server.accept();
                accepted.incrementAndGet();
                Socket upstream;
                try {
                    upstream = new Socket(LOOPBACK, target);
                } catch (IOException e) {
                    reset(client);
                    continue;
                }
                sockets.add(client);
                sockets.add(upstream);
                long limit = stallsLeft.getAndUpdate(n -> Math.max(0, n - 1)) > 0 ? stallAfter.get() : -1;
                start("up", () -> pump(client, upstream, -1));
                start("down", () -> pump(upstream, client, limit));
            }
        } catch (IOException closedListener) {
            // down or closed
        }
    }

    /** Copies {@code from} to {@code to}; with a {@code limit} of 0 or more, stalls once that much has passed. */
    private void pump(Socket from, Socket to, long limit) {
        byte[] buffer = new byte[16 * 1024];
        long passed = 0;
        try {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            int n;
            while ((n = in.read(buffer)) > 0) {
                if (limit >= 0 && passed + n > limit) {
                    out.write(buffer, 0, (int) (limit - passed));
                    out.flush();
                    stalled.incrementAndGet();
                    closing.await(5, TimeUnit.MINUTES); // silent, the connection left open, until closed
                    return;
                }
                out.write(buffer, 0, n);
                out.flush();
                passed += n;
            }
        } catch (IOException | InterruptedException e) {
            // one side closed or reset
        } finally {
            close(from);
            close(to);
        }
    }

    private static void reset(Socket socket) {
        try {
            socket.setSoLinger(true, 0); // close with a reset, as a crashed server's kernel would
        } catch (IOException ignored) {
            // closing anyway
        }
        close(socket);
    }

    private static void close(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() throws IOException {
        synchronized (listenerLock) {
            closed = true;
        }
        closing.countDown();
        down();
    }
}
