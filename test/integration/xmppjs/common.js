// Shared helpers for the xmpp.js scenarios run by ../xmppjs_test.go.
//
// Every scenario takes --host, --domain, --port (STARTTLS), --tls-port
// (direct TLS) and its own options; prints "OK ..." lines the Go test
// checks, then "PASS", or "FAIL <reason>" and exits 1; and logs every
// element each client sends and receives on stderr ("xml: romeo >>> ...").
// The whole scenario is bounded by a 20 s timer.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { parseArgs } from "node:util";
import { TLSSocket } from "node:tls";

import { client, xml } from "@xmpp/client";

export { xml };

export const NS_ROSTER = "jabber:iq:roster";
export const NS_DELAY = "urn:xmpp:delay";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

export const TIME_LIMIT_MS = 20_000;

export class Failure extends Error {}

export function report(line) {
  process.stdout.write(line + "\n");
}

function log(line) {
  process.stderr.write(line + "\n");
}

// --- SCRAM-SHA-256 (RFC 7677) without channel binding ------------------
//
// @xmpp/client 0.14 ships SCRAM-SHA-1 and PLAIN only. This is a
// saslmechanisms-style mechanism (name, clientFirst, response, challenge).
// It sends the gs2 flag "n": a client that does not support channel
// binding. The server's signature (v=) is checked against the <success/>
// payload in Client.login, since xmpp.js does not pass it on.

function saslName(s) {
  return s.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function hmac(key, data) {
  return createHmac("sha256", key).update(data).digest();
}

function parseAttrs(msg) {
  const out = {};
  for (const part of msg.split(",")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export class ScramSHA256 {
  constructor() {
    this.stage = "initial";
  }

  response(cred) {
    if (this.stage === "initial") {
      this.cnonce = randomBytes(18).toString("base64");
      this.gs2Header = "n,,";
      this.clientFirstBare = `n=${saslName(cred.username)},r=${this.cnonce}`;
      this.stage = "challenge";
      return this.gs2Header + this.clientFirstBare;
    }
    if (this.stage === "challenge") {
      const a = parseAttrs(this.serverFirst);
      if (!a.r || !a.r.startsWith(this.cnonce) || a.r === this.cnonce) {
        throw new Failure(`SCRAM: server nonce ${a.r} does not extend ours ${this.cnonce}`);
      }
      const iterations = parseInt(a.i, 10);
      if (!(iterations >= 4096)) {
        throw new Failure(`SCRAM: iteration count ${a.i} < 4096 (RFC 7677 §4)`);
      }
      const salted = pbkdf2Sync(cred.password.normalize("NFKC"), Buffer.from(a.s, "base64"), iterations, 32, "sha256");
      const clientKey = hmac(salted, "Client Key");
      const storedKey = createHash("sha256").update(clientKey).digest();
      const withoutProof = `c=${Buffer.from(this.gs2Header).toString("base64")},r=${a.r}`;
      const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
      const sig = hmac(storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ sig[i];
      this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
      this.stage = "final";
      return `${withoutProof},p=${proof.toString("base64")}`;
    }
    return "";
  }

  challenge(chal) {
    if (this.stage === "challenge") this.serverFirst = chal;
    return this;
  }

  // verify checks the server-final-message "v=..." (RFC 5802 §3).
  verify(serverFinal) {
    const a = parseAttrs(serverFinal);
    if (a.e) throw new Failure(`SCRAM: server-final error e=${a.e}`);
    if (!a.v) throw new Failure(`SCRAM: no v= in server-final-message ${JSON.stringify(serverFinal)}`);
    const v = Buffer.from(a.v, "base64");
    if (!this.serverSignature || v.length !== this.serverSignature.length || !timingSafeEqual(v, this.serverSignature)) {
      throw new Failure("SCRAM: the server's signature does not match");
    }
  }
}
ScramSHA256.prototype.name = "SCRAM-SHA-256";
ScramSHA256.prototype.clientFirst = true;

// --- arguments and the time limit -----------------------------------------

export function parse(options = {}) {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      domain: { type: "string", default: "localhost" },
      port: { type: "string", default: "5222" },
      "tls-port": { type: "string", default: "5223" },
      ...options,
    },
  });
  return values;
}

const clients = new Set();

// run runs scenario(args) under the time limit and exits 0 after PASS or 1
// after FAIL.
export function run(scenario, options) {
  let args;
  try {
    args = parse(options);
  } catch (err) {
    report(`FAIL arguments: ${err.message}`);
    process.exit(2);
  }
  const timer = setTimeout(() => {
    report(`FAIL time limit of ${TIME_LIMIT_MS / 1000}s reached`);
    process.exit(1);
  }, TIME_LIMIT_MS);
  scenario(args).then(
    async () => {
      clearTimeout(timer);
      await stopAll();
      report("PASS");
      process.exit(0);
    },
    async (err) => {
      clearTimeout(timer);
      log(err && err.stack ? err.stack : String(err));
      report(`FAIL ${err && err.message ? err.message : err}`.replace(/\n/g, " "));
      await stopAll();
      process.exit(1);
    },
  );
}

async function stopAll() {
  await Promise.allSettled([...clients].map((c) => c.logout()));
}

// --- the client -------------------------------------------------------------

// Client wraps an xmpp.js client: SCRAM-SHA-256 only, no reconnection,
// every element logged on stderr, incoming stanzas kept in order.
export class Client {
  constructor(args, username, password, { name = username, directTLS = false, resource, service: url } = {}) {
    this.args = args;
    this.name = name;
    this.username = username;
    this.stanzas = []; // every stanza received, in order
    this.waiters = [];
    this.scram = null;
    // url: another transport, e.g. "ws://127.0.0.1:5280/xmpp-websocket".
    const service =
      url ||
      (directTLS ? `xmpps://${args.host}:${args["tls-port"]}` : `xmpp://${args.host}:${args.port}`);
    this.xmpp = client({ service, domain: args.domain, username, password, resource });
    const x = this.xmpp;
    x.reconnect.stop();
    // Only our SCRAM-SHA-256: the factory's list is what xmpp.js offers.
    const self = this;
    class Mech extends ScramSHA256 {
      constructor() {
        super();
        self.scram = this;
      }
    }
    x.saslFactory._mechs = [{ name: "SCRAM-SHA-256", mech: Mech }];

    x.on("send", (el) => log(`xml: ${this.name} >>> ${el.toString()}`));
    x.on("element", (el) => {
      log(`xml: ${this.name} <<< ${el.toString()}`);
      if (el.is("success", NS_SASL)) this.onSuccess(el);
    });
    x.on("status", (s) => log(`status: ${this.name} ${s}`));
    x.on("error", (err) => {
      log(`error: ${this.name} ${err && err.stack ? err.stack : err}`);
      this.lastError = err;
    });
    x.on("stanza", (st) => {
      this.stanzas.push(st);
      this.check();
    });
    // Acknowledge roster pushes (RFC 6121 §2.1.6) from the account only;
    // xmpp.js answers other unhandled iq get/set with <service-unavailable/>.
    x.iqCallee.set(NS_ROSTER, "query", (ctx) => {
      const from = ctx.stanza.attrs.from;
      if (from && from !== bare(this.jid)) {
        return xml("error", { type: "cancel" }, xml("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
      }
      return true;
    });
  }

  onSuccess(el) {
    try {
      const data = Buffer.from(el.text(), "base64").toString();
      if (!this.scram) throw new Failure("<success/> without a SCRAM exchange");
      this.scram.verify(data);
      this.serverVerified = true;
    } catch (err) {
      this.successError = err;
    }
  }

  // login connects, authenticates and binds; it resolves to the bound JID.
  async login() {
    clients.add(this);
    const x = this.xmpp;
    let jid;
    try {
      jid = await x.start();
    } catch (err) {
      throw new Failure(`${this.name}: login failed: ${err.condition ? err.condition + " " : ""}${err.message}`);
    }
    if (this.successError) throw this.successError;
    if (!this.serverVerified) throw new Failure(`${this.name}: the server's SCRAM signature was not checked`);
    this.jid = jid.toString();
    this.mech = this.scram && this.scram.name;
    // xmpp.js wraps the node socket: @xmpp/tls's Socket holds a TLSSocket.
    const sock = x.socket && x.socket.socket;
    this.tls = sock instanceof TLSSocket && sock.encrypted ? sock.getProtocol() : "none";
    return this.jid;
  }

  async logout() {
    clients.delete(this);
    const x = this.xmpp;
    if (x.status === "offline" || x.status === "disconnect") return;
    try {
      await x.stop();
    } catch (err) {
      log(`stop: ${this.name} ${err}`);
    }
  }

  send(el) {
    return this.xmpp.send(el);
  }

  // iq sends an iq and resolves to the result <iq/>, or throws on an error
  // response or after timeoutMs.
  async iq(el, what, timeoutMs = 10_000) {
    try {
      return await this.xmpp.iqCaller.request(el, timeoutMs);
    } catch (err) {
      throw new Failure(`${this.name}: ${what}: ${err.condition || ""} ${err.message}`);
    }
  }

  check() {
    this.waiters = this.waiters.filter((w) => {
      const v = w.pred();
      if (v) w.resolve(v);
      return !v;
    });
  }

  // waitFor resolves to pred()'s first truthy value, checked after every
  // stanza received.
  waitFor(what, pred, timeoutMs = 10_000) {
    const v = pred();
    if (v) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        if (this.waiters.includes(w)) {
          this.waiters = this.waiters.filter((o) => o !== w);
          const d = typeof what === "function" ? what() : what;
          reject(new Failure(`${this.name}: no ${d} after ${timeoutMs / 1000}s`));
        }
      }, timeoutMs);
    });
  }

  // find returns the first stanza received that matches pred.
  find(pred) {
    return this.stanzas.find(pred);
  }

  messages() {
    return this.stanzas.filter((s) => s.is("message"));
  }
}

export function bare(jid) {
  return (jid || "").split("/")[0];
}

export function rosterItem(iq, jid) {
  const q = iq && iq.getChild("query", NS_ROSTER);
  return q && q.getChildren("item").find((i) => i.attrs.jid === jid);
}
