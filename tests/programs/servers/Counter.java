// Restore test (issue 13): a JVM with several threads counting and a TCP
// server on 127.0.0.1. Prints "port N" and "ready"; a client's line
// "count" is answered "counter N" (the threads' sum), "quit" answers
// "bye N" and exits 0.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicLong;

public class Counter {
  public static void main(String[] args) throws Exception {
    AtomicLong counter = new AtomicLong();
    for (int i = 0; i < 4; i++) {
      Thread t = new Thread(() -> {
        while (true) {
          counter.incrementAndGet();
          try {
            Thread.sleep(10);
          } catch (InterruptedException e) {
            return;
          }
        }
      });
      t.setDaemon(true);
      t.start();
    }
    ServerSocket server = new ServerSocket(0, 5, InetAddress.getByName("127.0.0.1"));
    System.out.println("port " + server.getLocalPort());
    System.out.println("ready");
    System.out.flush();
    while (true) {
      try (Socket s = server.accept()) {
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream()));
        PrintWriter out = new PrintWriter(s.getOutputStream(), true);
        String line = in.readLine();
        if ("quit".equals(line)) {
          out.println("bye " + counter.get());
          System.exit(0);
        }
        out.println("counter " + counter.get());
      }
    }
  }
}
