# Restore test (interpreters_test.cc, RestoreInterpreter.PythonAsyncioUnixEcho):
# an asyncio echo server on an AF_UNIX path and a client in the same loop;
# prints "i echo" lines.
import asyncio, os
path = os.path.join(os.getcwd(), 'echo.sock')
async def handle(r, w):
    while line := await r.readline():
        w.write(line)
        await w.drain()
async def main():
    server = await asyncio.start_unix_server(handle, path)
    r, w = await asyncio.open_unix_connection(path)
    i = 0
    while True:
        i += 1
        w.write(b'%d\n' % i)
        await w.drain()
        await asyncio.sleep(0.03)
        echo = (await r.readline()).decode().strip()
        print(i, echo, flush=True)
asyncio.run(main())
