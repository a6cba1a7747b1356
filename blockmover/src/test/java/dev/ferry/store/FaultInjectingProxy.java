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
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP relay on 127.0.0.1 in front of another local port (an S3Proxy), which can be slow or fail the way a
 * network does:
 * <ul>
 *   <li>a {@link Link}, chosen when the proxy is made: {@link Link#latency(Duration) latency} (a distant endpoint)
 *       or a {@link Link#throttled(int) limited rate} (a slow link on which data keeps moving);</li>
 *   <li>{@link #down()}: the endpoint is gone. The listening socket is closed, so new connections are refused,
 *       and every open connection is reset. {@link #up()} listens again on the same port. The port is chosen
 *       below the kernel's range of ephemeral ports, so that no outgoing connection takes it meanwhile;</li>
 *   <li>{@link #stallConnections(int, long)}: the next connections accepted pass the request on, but stop
 *       forwarding the answer after some bytes, and then stay open and silent, as a connection whose other end
 *       went away without a word.</li>
 * </ul>
 */
public final class FaultInjectingProxy implements AutoCloseable {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    /** Ports tried for listening: below the usual ephemeral range (32768 and up), above the well-known ports. */
    private static final int LOW_PORT = 20_000;
    private static final int HIGH_PORT = 32_000;

    /**
     * How data passes the relay, each way: {@link #DIRECT as fast as it comes}, held back for a while, or at a
     * limited rate. Pieces of at most {@code bufferSize} bytes are read and passed on; a {@code receiveWindow}
     * above 0 sets the size of the receive buffer of the connections accepted.
     */
    public record Link(long holdNanos, long bytesPerSecond, int bufferSize, int receiveWindow) {
        /** No delay and no limit. */
        public static final Link DIRECT = new Link(0, 0, 16 * 1024, 0);

        /**
         * Holds back every piece of data for {@code delay / 2} in each direction, so a request and its response
         * take about {@code delay} longer: a distant endpoint.
         */
        public static Link latency(Duration delay) {
            return new Link(delay.toNanos() / 2, 0, 64 * 1024, 0);
        }

        /**
         * Passes at most {@code bytesPerSecond} each way, in small steps, so that data keeps moving slowly; with a
         * small receive window, as on a slow link, so the sender's writes finish about when the data has passed.
         */
        public static Link throttled(int bytesPerSecond) {
            return new Link(0, bytesPerSecond, 16 * 1024, 64 * 1024);
        }

        private void holdBack() throws InterruptedException {
            if (holdNanos > 0) {
                TimeUnit.NANOSECONDS.sleep(holdNanos);
            }
        }

        private void pace(int bytes) throws InterruptedException {
            if (bytesPerSecond > 0) {
                TimeUnit.NANOSECONDS.sleep(TimeUnit.SECONDS.toNanos(1) * bytes / bytesPerSecond);
            }
        }
    }

    private final int target;
    private final Link link;
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

    /** A relay to {@code target} that passes data on as fast as it comes. */
    public FaultInjectingProxy(int target) throws IOException {
        this(target, Link.DIRECT);
    }

    public FaultInjectingProxy(int target, Link link) throws IOException {
        this.target = target;
        this.link = link;
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

    private ServerSocket bind(int port) throws IOException {
        ServerSocket socket = new ServerSocket();
        try {
            socket.setReuseAddress(true);
            if (link.receiveWindow() > 0) {
                socket.setReceiveBufferSize(link.receiveWindow()); // before bind, so accepted sockets get it
            }
            socket.bind(new InetSocketAddress(LOOPBACK, port), 50);
            return socket;
        } catch (IOException e) {
            socket.close();
            throw e;
        }
    }

    public int port() {
        return port;
    }

    /** {@code http://127.0.0.1:<port>}. */
    public URI endpoint() {
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

    /**
     * Copies {@code from} to {@code to} over the {@link Link}; with a {@code limit} of 0 or more, stalls once that
     * much has passed.
     */
    private void pump(Socket from, Socket to, long limit) {
        byte[] buffer = new byte[link.bufferSize()];
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
                link.holdBack();
                out.write(buffer, 0, n);
                out.flush();
                passed += n;
                link.pace(n);
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

    /** Stops listening and resets every open connection. */
    @Override
    public void close() throws IOException {
        synchronized (listenerLock) {
            closed = true;
        }
        closing.countDown();
        down();
    }
}
