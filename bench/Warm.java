// The JVM of bench/warm_start.sh and bench/warm_ab.sh: a warm-up loop,
// "ready" on stdout, then it blocks on standard input and halts at its end.
public class Warm {
  public static void main(String[] args) throws Exception {
    long sum = 0;
    for (int round = 0; round < 200; round++) {
      java.util.HashMap<Integer, String> m = new java.util.HashMap<>();
      for (int i = 0; i < 10000; i++) m.put(i, Integer.toString(i));
      sum += m.size();
    }
    System.out.println("ready " + sum);
    System.out.flush();
    while (System.in.read() >= 0) {}
    Runtime.getRuntime().halt(0);
  }
}
