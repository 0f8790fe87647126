# Restore test (issue 13): an asyncio TCP echo server on 127.0.0.1. Prints
# "port N" and "ready"; each line a client sends comes back as "echo LINE";
# "quit" answers "bye" and exits 0.
import asyncio
import os
import sys


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        if line == b"quit\n":
            writer.write(b"bye\n")
            await writer.drain()
            os._exit(0)
        writer.write(b"echo " + line)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1])
    print("ready", flush=True)
    await server.serve_forever()


asyncio.run(main())
