# Restore test (interpreters_test.cc, RestoreInterpreter.Python): a thread
# grows a dict under a lock while the main loop prints "i count" lines.
import threading, time
d = {}
lock = threading.Lock()
def grow():
    n = 0
    while True:
        n += 1
        with lock:
            d[-n] = n
        time.sleep(0.01)
threading.Thread(target=grow, daemon=True).start()
i = 0
while True:
    i += 1
    with lock:
        d[i] = str(i) * 3
        mine = sum(1 for k in d if k > 0)
    print(i, mine, flush=True)
    time.sleep(0.05)
