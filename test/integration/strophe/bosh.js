// XMPP over BOSH (XEP-0124/XEP-0206) with Strophe.js: romeo logs in over
// BOSH (SASL, stream restart, bind), juliet over WebSocket (RFC 7395);
// they exchange a chat message each way. Then one of romeo's responses
// (the one carrying juliet's "lost" message) is dropped on its way to
// Strophe: Strophe times out, sends the same request (the same rid) again,
// and must get the message from the server's response cache. Finally
// romeo disconnects (a terminate body carrying unavailable presence),
// which juliet sees through romeo's directed presence.
//
//   node bosh.js --bosh-url http://H:P/http-bind --ws-url ws://H:P/xmpp-websocket \
//       --domain D --user1 romeo --user2 juliet --password S

import { $msg, $pres, Client, Failure, Strophe, bare, bodyText, lossy, report, run } from "./common.js";

run(
  async (args) => {
    const romeo = new Client("romeo", args["bosh-url"], `${args.user1}@${args.domain}/bosh`, args.password);
    const juliet = new Client("juliet", args["ws-url"], `${args.user2}@${args.domain}/ws`, args.password);
    // A short wait keeps Strophe's retry timeout (1.1 x wait) short.
    await Promise.all([romeo.login(3), juliet.login()]);
    if (romeo.conn._proto.constructor.name !== "Bosh" || juliet.conn._proto.constructor.name !== "Websocket") {
      throw new Failure(`transports ${romeo.conn._proto.constructor.name} ${juliet.conn._proto.constructor.name}`);
    }
    const restarted = lossy.sent.some((b) => /xmpp:restart=["']true["']/.test(b));
    if (!restarted) throw new Failure("romeo never sent a restart request");
    report(`OK login bosh=${romeo.conn.jid} mech=${romeo.mech} ws=${juliet.conn.jid} ws-mech=${juliet.mech} restart=${restarted}`);

    // Directed presence, so that juliet learns when romeo leaves.
    romeo.send($pres({ to: juliet.conn.jid }));
    await juliet.waitFor("romeo's presence", (s) => s.nodeName === "presence" && s.getAttribute("from") === romeo.conn.jid);

    romeo.send($msg({ to: juliet.conn.jid, type: "chat" }).c("body").t("over bosh"));
    const m1 = await juliet.waitFor("romeo's message", (s) => s.nodeName === "message" && bodyText(s) === "over bosh");
    report(`OK juliet got from=${m1.getAttribute("from")}`);
    juliet.send($msg({ to: romeo.conn.jid, type: "chat" }).c("body").t("over websocket"));
    const m2 = await romeo.waitFor("juliet's message", (s) => s.nodeName === "message" && bodyText(s) === "over websocket");
    report(`OK romeo got from=${m2.getAttribute("from")}`);

    // Lose the response that carries the next message once.
    let armed = true;
    lossy.dropResponse = (text) => {
      if (armed && text.includes("lost and found")) {
        armed = false;
        return true;
      }
      return false;
    };
    juliet.send($msg({ to: romeo.conn.jid, type: "chat" }).c("body").t("lost and found"));
    const m3 = await romeo.waitFor("the lost message", (s) => s.nodeName === "message" && bodyText(s) === "lost and found");
    if (lossy.dropped.length !== 1) throw new Failure(`${lossy.dropped.length} responses dropped`);
    const rid = /rid=["'](\d+)["']/;
    const lostRID = (() => {
      // The request whose response was dropped is the last one sent
      // before the retry with the same rid.
      const seen = new Map();
      for (const b of lossy.sent) {
        const m = rid.exec(b);
        if (!m) continue;
        if (seen.has(m[1])) return m[1];
        seen.set(m[1], true);
      }
      return "";
    })();
    if (!lostRID) throw new Failure("Strophe did not resend a request with the same rid");
    report(`OK retransmitted rid=${lostRID} from=${m3.getAttribute("from")}`);
    lossy.dropResponse = () => false;

    // Terminate: the body carries romeo's unavailable presence.
    await romeo.logout();
    const terminate = lossy.sent.find((b) => /type=["']terminate["']/.test(b));
    if (!terminate || !terminate.includes("unavailable")) throw new Failure(`terminate body ${terminate}`);
    const gone = await juliet.waitFor(
      "romeo's unavailable presence",
      (s) => s.nodeName === "presence" && s.getAttribute("type") === "unavailable" && bare(s.getAttribute("from")) === bare(romeo.conn.jid),
    );
    report(`OK terminate unavailable-from=${gone.getAttribute("from")}`);
    await juliet.logout();
    report("OK logout");
  },
  {
    "bosh-url": { type: "string" },
    "ws-url": { type: "string" },
    domain: { type: "string" },
    user1: { type: "string" },
    user2: { type: "string" },
    password: { type: "string" },
  },
);
