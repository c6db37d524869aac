// Offline delivery (XEP-0160) with XEP-0203 delays: juliet logs in and out;
// romeo sends her three chat messages; at her next login, after initial
// presence, she gets all three, in order, from romeo's full JID, each with
// one <delay xmlns='urn:xmpp:delay'/> from the server with a UTC stamp
// between the sending and the delivery; a third login gets none again.
//
//   node offline.js --port P --tls-port P2 --user1 romeo --user2 juliet --password S

import { Client, Failure, NS_DELAY, NS_ROSTER, report, run, xml } from "./common.js";

const bodies = [1, 2, 3].map((i) => `offline ${i} of 3`);

function withBody(c) {
  return c.messages().filter((m) => m.getChildText("body"));
}

// XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD.
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

run(
  async (args) => {
    const romeoBare = `${args.user1}@${args.domain}`;
    const julietBare = `${args.user2}@${args.domain}`;
    if (romeoBare === julietBare) throw new Failure("user1 and user2 must differ");

    let juliet = new Client(args, args.user2, args.password);
    await juliet.login();
    await juliet.send(xml("presence"));
    await juliet.logout();
    report("OK juliet-offline");

    const romeo = new Client(args, args.user1, args.password);
    await romeo.login();
    await romeo.send(xml("presence"));
    // One second of slack: stamps may be truncated to seconds.
    const before = Math.floor(Date.now() / 1000) * 1000 - 1000;
    for (const [i, b] of bodies.entries()) {
      await romeo.send(xml("message", { to: julietBare, type: "chat", id: `off${i + 1}` }, xml("body", {}, b)));
    }
    // The server handles a stream's stanzas in order: once this iq is
    // answered, the messages were routed (stored).
    await romeo.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get after the messages");
    report("OK sent count=3");
    const bounced = romeo.find((s) => s.is("message") && s.attrs.type === "error");
    if (bounced) throw new Failure(`romeo got an error back: ${bounced}`);

    juliet = new Client(args, args.user2, args.password, { name: `${args.user2}-again`, directTLS: true });
    await juliet.login();
    await juliet.send(xml("presence")); // XEP-0160 §3: delivery follows initial presence
    const got = await juliet.waitFor(
      () => `3 offline messages (got: ${juliet.messages().join(" ")})`,
      () => withBody(juliet).length >= 3 && withBody(juliet),
    );
    const after = Date.now() + 1000;
    const gotBodies = got.map((m) => m.getChildText("body"));
    if (JSON.stringify(gotBodies) !== JSON.stringify(bodies)) {
      throw new Failure(`bodies ${JSON.stringify(gotBodies)}, want ${JSON.stringify(bodies)} in this order`);
    }
    for (const m of got) {
      if (m.attrs.from !== romeo.jid) throw new Failure(`offline message from ${m.attrs.from}, want ${romeo.jid}: ${m}`);
      if (m.attrs.type !== "chat") throw new Failure(`offline message of type ${m.attrs.type}, want chat: ${m}`);
      const delays = m.getChildren("delay", NS_DELAY);
      if (delays.length !== 1) throw new Failure(`${delays.length} XEP-0203 <delay/> elements, want 1: ${m}`);
      const d = delays[0];
      if (d.attrs.from !== args.domain) throw new Failure(`<delay/> from=${d.attrs.from}, want the server ${args.domain}: ${m}`);
      const stamp = d.attrs.stamp || "";
      if (!STAMP.test(stamp)) throw new Failure(`<delay/> stamp ${JSON.stringify(stamp)} is not a XEP-0082 DateTime: ${m}`);
      const t = Date.parse(stamp);
      if (!(t >= before && t <= after)) {
        throw new Failure(`<delay/> stamp ${stamp} not between ${new Date(before).toISOString()} and ${new Date(after).toISOString()}`);
      }
    }
    report(`OK offline count=3 in-order from=${got[0].attrs.from} delay-from=${got[0].getChild("delay", NS_DELAY).attrs.from} stamp=${got[0].getChild("delay", NS_DELAY).attrs.stamp}`);
    // A roster round trip: anything still stored would have come by now.
    await juliet.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get");
    if (withBody(juliet).length !== 3) throw new Failure(`juliet got ${withBody(juliet).length} messages, want 3`);
    await juliet.logout();

    const third = new Client(args, args.user2, args.password, { name: `${args.user2}-third` });
    await third.login();
    await third.send(xml("presence"));
    await third.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get");
    await new Promise((r) => setTimeout(r, 500));
    const again = withBody(third);
    if (again.length !== 0) throw new Failure(`offline messages delivered again: ${again.join(" ")}`);
    report("OK no-redelivery");
    await third.logout();
    await romeo.logout();
  },
  {
    user1: { type: "string", default: "romeo" },
    user2: { type: "string", default: "juliet" },
    password: { type: "string" },
  },
);
