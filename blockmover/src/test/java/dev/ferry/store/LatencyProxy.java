package dev.ferry.store;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A TCP relay on 127.0.0.1 to another local port that holds back every piece of data for {@code delay / 2} in
 * each direction, so a request and its response take about {@code delay} longer: a distant S3 endpoint.
 */
public final class LatencyProxy implements AutoCloseable {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    private final ServerSocket server;
    private final int target;
    private final long halfDelayNanos;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();

    public LatencyProxy(int target, Duration delay) throws IOException {
        this.server = new ServerSocket();
        server.bind(new InetSocketAddress(LOOPBACK, 0), 50);
        this.target = target;
        this.halfDelayNanos = delay.toNanos() / 2;
        start(this::acceptLoop, "latency-proxy-accept");
    }

    public int port() {
        return server.getLocalPort();
    }

    private static void start(Runnable task, String name) {
        Thread thread = new Thread(task, name);
        thread.setDaemon(true);
        thread.start();
    }

    private void acceptLoop() {
        try {
            while (true) {
                Socket client = server.accept();
                Socket upstream = new Socket(LOOPBACK, target);
                sockets.add(client);
                sockets.add(upstream);
                start(() -> pump(client, upstream), "latency-proxy-up");
                start(() -> pump(upstream, client), "latency-proxy-down");
            }
        } catch (IOException closed) {
            // the proxy is closed
        }
    }

    private void pump(Socket from, Socket to) {
        byte[] buffer = new byte[64 * 1024];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buffer)) > 0) {
                TimeUnit.NANOSECONDS.sleep(halfDelayNanos);
                out.write(buffer, 0, n);
                out.flush();
            }
        } catch (IOException | InterruptedException e) {
            // one side closed
        } finally {
            closeQuietly(from);
            closeQuietly(to);
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket socket : sockets) {
            closeQuietly(socket);
        }
    }
}
