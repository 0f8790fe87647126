// Restore test (issue 13): node with a setInterval timer and an HTTP
// server on 127.0.0.1. Prints "port N" and "ready"; GET / answers
// "ticks N" (the timer's count), GET /quit answers "bye" and exits 0.
const http = require('http');
let ticks = 0;
setInterval(() => { ticks++; }, 20);
const server = http.createServer((req, res) => {
  if (req.url === '/quit') {
    res.end('bye\n', () => process.exit(0));
    return;
  }
  res.end('ticks ' + ticks + '\n');
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write('port ' + server.address().port + '\nready\n');
});
