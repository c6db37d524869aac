// XMPP over WebSocket (RFC 7395): romeo logs in with SCRAM-SHA-256 over
// ws:// (the websocket module on a plain HTTP listener on loopback),
// juliet over STARTTLS; they exchange a chat message each way, then both
// log out (romeo's ends with <close/>).
//
//   node websocket.js --port P --tls-port P2 --ws-url ws://H:P/xmpp-websocket --user1 romeo --user2 juliet --password S
//
// Node 20 needs --experimental-websocket for its WebSocket (set in
// NODE_OPTIONS by ../xmppjs_test.go); Node 22 has it by default.

import { Client, Failure, bare, report, run, xml } from "./common.js";

function messageFrom(c, fromBare, body) {
  return c.waitFor(`message "${body}" from ${fromBare}`, () =>
    c.find((s) => s.is("message") && bare(s.attrs.from) === fromBare && s.getChildText("body") === body),
  );
}

run(
  async (args) => {
    if (typeof WebSocket === "undefined") throw new Failure("no global WebSocket (node >= 22 or --experimental-websocket)");
    const romeo = new Client(args, args.user1, args.password, { service: args["ws-url"] });
    const juliet = new Client(args, args.user2, args.password);
    await Promise.all([romeo.login(), juliet.login()]);
    if (!(romeo.xmpp.socket && romeo.xmpp.socket.socket instanceof WebSocket)) {
      throw new Failure("romeo is not on a WebSocket");
    }
    report(`OK login ws=${romeo.jid} mech=${romeo.mech} tcp=${juliet.jid}`);

    await romeo.send(xml("message", { to: juliet.jid, type: "chat" }, xml("body", {}, "over websocket")));
    const m1 = await messageFrom(juliet, bare(romeo.jid), "over websocket");
    report(`OK juliet got from=${m1.attrs.from}`);
    await juliet.send(xml("message", { to: romeo.jid, type: "chat" }, xml("body", {}, "over tcp")));
    const m2 = await messageFrom(romeo, bare(juliet.jid), "over tcp");
    report(`OK romeo got from=${m2.attrs.from}`);

    await romeo.logout();
    report("OK logout");
  },
  {
    "ws-url": { type: "string" },
    user1: { type: "string" },
    user2: { type: "string" },
    password: { type: "string" },
  },
);
