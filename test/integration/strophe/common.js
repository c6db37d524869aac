// Shared helpers for the Strophe.js scenarios run by ../strophe_test.go.
//
// Every scenario takes its options as --name value, prints "OK ..." lines
// the Go test checks, then "PASS", or "FAIL <reason>" and exits 1; it logs
// every request and response body each connection sends and receives on
// stderr ("xml: romeo >>> ..."). The whole scenario is bounded by a timer.
//
// Strophe.js runs in Node with @xmldom/xmldom (DOM) and ws (WebSocket),
// which its Node build imports itself, and needs an XMLHttpRequest for
// BOSH: xhr2 is installed as the global one. LossyXHR wraps it to drop
// chosen responses, as a broken HTTP connection would.

import { parseArgs } from "node:util";
import XHR2 from "xhr2";
import { DOMParser } from "@xmldom/xmldom";
import { Strophe, $msg, $pres } from "strophe.js";

export { Strophe, $msg, $pres };

export const TIME_LIMIT_MS = 40_000;

export class Failure extends Error {}

export function report(line) {
  process.stdout.write(line + "\n");
}

export function log(line) {
  process.stderr.write(line + "\n");
}

// LossyXHR is xhr2's XMLHttpRequest with a responseXML (xhr2 has none,
// and strophe.js 5.0.0's fallback that parses responseText returns null
// instead of the parsed body), whose completed responses are hidden
// from Strophe while dropResponse(text) returns true: Strophe sees a
// request that never completes, gives up on it after its timeout and sends
// the same body (the same rid) again.
export const lossy = { dropResponse: () => false, dropped: [], sent: [] };

class LossyXHR extends XHR2 {
  set onreadystatechange(fn) {
    this._strophe = fn;
  }
  get onreadystatechange() {
    return (ev) => {
      if (this.readyState === 4 && this.status === 200 && lossy.dropResponse(this.responseText)) {
        lossy.dropped.push(this.responseText);
        return;
      }
      if (this._strophe) this._strophe(ev);
    };
  }
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, "text/xml");
  }
  send(data) {
    if (typeof data === "string") lossy.sent.push(data);
    return super.send(data);
  }
}
globalThis.XMLHttpRequest = LossyXHR;

// Strophe's own debug log goes to stdout, where the Go test reads the
// result lines: keep warnings and errors only.
Strophe.setLogLevel(Strophe.LogLevel.WARN);

// Client is one Strophe connection with a log of what it received.
export class Client {
  constructor(name, service, jid, password) {
    this.name = name;
    this.jid = jid;
    this.password = password;
    this.conn = new Strophe.Connection(service);
    this.stanzas = [];
    this.waiters = [];
    this.statuses = [];
    this.mech = "";
    this.conn.rawInput = (data) => log(`xml: ${this.name} <<< ${data}`);
    this.conn.rawOutput = (data) => {
      log(`xml: ${this.name} >>> ${data}`);
      const m = /<auth [^>]*mechanism=["']([^"']+)["']/.exec(data);
      if (m) this.mech = m[1];
    };
    this.conn.addHandler((st) => {
      this.stanzas.push(st);
      this._check();
      return true;
    });
  }

  // login connects and resolves once connected (SASL, restart, bind done).
  login(wait) {
    return new Promise((resolve, reject) => {
      this.conn.connect(
        this.jid,
        this.password,
        (status, cond) => {
          this.statuses.push(status);
          if (status === Strophe.Status.CONNECTED) resolve();
          if (status === Strophe.Status.CONNFAIL || status === Strophe.Status.AUTHFAIL) {
            reject(new Failure(`${this.name}: connection failed (status ${status}, ${cond})`));
          }
          if (status === Strophe.Status.DISCONNECTED) {
            for (const w of this.waiters) w.reject(new Failure(`${this.name}: disconnected`));
            this.waiters = [];
          }
        },
        wait,
      );
    });
  }

  send(st) {
    this.conn.send(st);
    this.conn.flush();
  }

  // waitFor resolves with the first received stanza matching pred.
  waitFor(what, pred) {
    const found = this.stanzas.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      this.waiters.push({ what, pred, resolve, reject });
    });
  }

  _check() {
    this.waiters = this.waiters.filter((w) => {
      const st = this.stanzas.find(w.pred);
      if (st) w.resolve(st);
      return !st;
    });
  }

  // logout disconnects and resolves on DISCONNECTED.
  logout() {
    return new Promise((resolve) => {
      const prev = this.conn.connect_callback;
      this.conn.connect_callback = (status, cond) => {
        if (prev) prev(status, cond);
        if (status === Strophe.Status.DISCONNECTED) resolve();
      };
      this.conn.disconnect("done");
    });
  }
}

export function bare(jid) {
  return jid ? jid.split("/")[0] : "";
}

export function bodyText(st) {
  const b = st.getElementsByTagName("body")[0];
  return b ? b.textContent : "";
}

// run parses the options, runs scenario(args) within TIME_LIMIT_MS and
// prints PASS or FAIL.
export function run(scenario, options) {
  const { values } = parseArgs({ options, strict: true });
  const timer = setTimeout(() => {
    report(`FAIL time limit of ${TIME_LIMIT_MS} ms`);
    process.exit(1);
  }, TIME_LIMIT_MS);
  scenario(values).then(
    () => {
      clearTimeout(timer);
      report("PASS");
      process.exit(0);
    },
    (err) => {
      clearTimeout(timer);
      log(err && err.stack ? err.stack : String(err));
      report(`FAIL ${err && err.message ? err.message : err}`);
      process.exit(1);
    },
  );
}
