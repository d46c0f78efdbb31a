// The Express + rate-limiter-flexible peer: the same consume route Quotum
// serves, limited per Authorization header in memory, answering constant JSON.
const express = require('express');
const {RateLimiterMemory} = require('rate-limiter-flexible');

const port = Number(process.argv[2] || 18803);
const limiter = new RateLimiterMemory({points: 1e9, duration: 60});
const app = express();
app.disable('x-powered-by');
app.post('/api/v2/quota/consume', express.json(), async (req, res) => {
  try {
    const r = await limiter.consume(req.get('authorization') || 'anon', req.body.quantity || 1);
    res.json({allowed: true, consumed: 1, remaining: r.remainingPoints, limit: 1e9});
  } catch (r) {
    res.status(429).json({success: false, error: 'Rate limit exceeded.', code: 'rate_limited'});
  }
});
app.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
