#!/usr/bin/env node
// Prints an HS256 JWT for the gateway, signed with JWT_SECRET (for local
// development and docker compose; no dependencies beyond Node itself).
//
//   JWT_SECRET=... node dev-token.mjs [sub] [ttlSeconds]
//
// sub defaults to `dev`, ttlSeconds to 86400 (the token carries `exp`, which
// the gateway requires). JWT_ISSUER and JWT_AUDIENCE, when set, become the
// `iss` and `aud` claims (set them the same as the gateway's). Only the token
// is printed, so `TOKEN=$(node dev-token.mjs)` works.
import { createHmac } from 'node:crypto';

function base64url(value) {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value));
  return buf.toString('base64url');
}

function main() {
  const secret = process.env.JWT_SECRET;
  if (!secret) {
    console.error('dev-token: set JWT_SECRET (the gateway\'s HS256 secret)');
    process.exit(2);
  }
  const [sub = 'dev', ttlArg = '86400'] = process.argv.slice(2);
  const ttl = Number(ttlArg);
  if (!Number.isInteger(ttl) || ttl <= 0) {
    console.error(`dev-token: ttlSeconds must be a positive integer, got ${ttlArg}`);
    process.exit(2);
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, iat: now, exp: now + ttl };
  if (process.env.JWT_ISSUER) claims.iss = process.env.JWT_ISSUER;
  if (process.env.JWT_AUDIENCE) claims.aud = process.env.JWT_AUDIENCE;
  const signingInput = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(claims)}`;
  const signature = createHmac('sha256', secret).update(signingInput).digest();
  process.stdout.write(`${signingInput}.${base64url(signature)}\n`);
}

main();
