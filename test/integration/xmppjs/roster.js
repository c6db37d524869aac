// Two clients: roster add with push, the subscription handshake both ways
// (RFC 6121 §3), presence seen both ways (§4), and a chat message each way.
//
//   node roster.js --port P --tls-port P2 --user1 romeo --user2 juliet --password S

import { Client, Failure, bare, report, rosterItem, run, xml, NS_ROSTER } from "./common.js";

// rosterPush waits for a roster push about jid matching want (an object of
// item attributes; ask absent means no ask) and acknowledges nothing: xmpp.js
// answers the push itself.
async function rosterPush(c, jid, want) {
  const fits = (s) => {
    if (!s.is("iq") || s.attrs.type !== "set") return false;
    const it = rosterItem(s, jid);
    if (!it) return false;
    return Object.entries(want).every(([k, v]) => (v === undefined ? it.attrs[k] === undefined : it.attrs[k] === v));
  };
  const push = await c.waitFor(`roster push for ${jid} ${JSON.stringify(want)}`, () => c.find(fits));
  if (push.attrs.from && push.attrs.from !== bare(c.jid)) {
    throw new Failure(`${c.name}: roster push from ${push.attrs.from}, not from the account (RFC 6121 §2.1.6)`);
  }
  const it = rosterItem(push, jid);
  report(`OK ${c.name} roster-push jid=${jid} subscription=${it.attrs.subscription} ask=${it.attrs.ask || "-"}`);
}

function presenceFrom(c, fromBare, type) {
  return c.waitFor(`presence type=${type || "available"} from ${fromBare}`, () =>
    c.find((s) => s.is("presence") && bare(s.attrs.from) === fromBare && (s.attrs.type || "") === (type || "")),
  );
}

async function rosterGet(c, jid) {
  const res = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get");
  return rosterItem(res, jid);
}

run(
  async (args) => {
    const romeoBare = `${args.user1}@${args.domain}`;
    const julietBare = `${args.user2}@${args.domain}`;
    const romeo = new Client(args, args.user1, args.password);
    const juliet = new Client(args, args.user2, args.password, { directTLS: true });
    await Promise.all([romeo.login(), juliet.login()]);
    report(`OK login ${romeo.jid} ${juliet.jid}`);
    for (const c of [romeo, juliet]) {
      const res = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get");
      const n = res.getChild("query", NS_ROSTER).getChildren("item").length;
      if (n !== 0) throw new Failure(`${c.name}: roster has ${n} items at the start`);
      await c.send(xml("presence"));
    }
    report("OK rosters-empty");

    // Roster add (RFC 6121 §2.3): a push with subscription none.
    await romeo.iq(
      xml("iq", { type: "set" }, xml("query", { xmlns: NS_ROSTER }, xml("item", { jid: julietBare, name: "Juliet" }, xml("group", {}, "Capulets")))),
      "roster set",
    );
    await rosterPush(romeo, julietBare, { subscription: "none", ask: undefined });

    // romeo subscribes to juliet (§3.1): ask=subscribe, juliet sees the request.
    await romeo.send(xml("presence", { to: julietBare, type: "subscribe" }));
    await rosterPush(romeo, julietBare, { subscription: "none", ask: "subscribe" });
    const req = await presenceFrom(juliet, romeoBare, "subscribe");
    if (req.attrs.from !== romeoBare) throw new Failure(`subscription request from ${req.attrs.from}, want the bare JID ${romeoBare}`);
    report(`OK ${juliet.name} subscribe-request from=${req.attrs.from}`);

    // juliet approves: romeo's item becomes "to" and he gets her presence.
    await juliet.send(xml("presence", { to: romeoBare, type: "subscribed" }));
    await rosterPush(juliet, romeoBare, { subscription: "from" });
    await presenceFrom(romeo, julietBare, "subscribed");
    await rosterPush(romeo, julietBare, { subscription: "to", ask: undefined });
    const jp = await presenceFrom(romeo, julietBare, "");
    if (jp.attrs.from !== juliet.jid) throw new Failure(`romeo got juliet's presence from ${jp.attrs.from}, want ${juliet.jid}`);
    report(`OK ${romeo.name} presence from=${jp.attrs.from}`);

    // And the other way round.
    await juliet.send(xml("presence", { to: romeoBare, type: "subscribe" }));
    await rosterPush(juliet, romeoBare, { subscription: "from", ask: "subscribe" });
    await presenceFrom(romeo, julietBare, "subscribe");
    await romeo.send(xml("presence", { to: julietBare, type: "subscribed" }));
    await rosterPush(romeo, julietBare, { subscription: "both" });
    await rosterPush(juliet, romeoBare, { subscription: "both", ask: undefined });
    const rp = await presenceFrom(juliet, romeoBare, "");
    if (rp.attrs.from !== romeo.jid) throw new Failure(`juliet got romeo's presence from ${rp.attrs.from}, want ${romeo.jid}`);
    report(`OK ${juliet.name} presence from=${rp.attrs.from}`);

    for (const [c, other] of [[romeo, julietBare], [juliet, romeoBare]]) {
      const it = await rosterGet(c, other);
      if (!it || it.attrs.subscription !== "both" || it.attrs.ask) {
        throw new Failure(`${c.name}: roster item for ${other} is ${it}, want subscription=both and no ask`);
      }
    }
    const it = await rosterGet(romeo, julietBare);
    if (it.attrs.name !== "Juliet" || it.getChildText("group") !== "Capulets") {
      throw new Failure(`romeo's item lost its name or group: ${it}`);
    }
    report("OK rosters-both");

    // A chat message each way: to the bare JID, then a reply to the full JID.
    await romeo.send(xml("message", { to: julietBare, type: "chat", id: "m1" }, xml("body", {}, "But soft, what light")));
    const m1 = await juliet.waitFor("romeo's message", () => juliet.find((s) => s.is("message") && s.getChildText("body")));
    if (m1.attrs.from !== romeo.jid || m1.attrs.type !== "chat" || m1.getChildText("body") !== "But soft, what light") {
      throw new Failure(`juliet got ${m1}`);
    }
    report(`OK ${juliet.name} got from=${m1.attrs.from} type=${m1.attrs.type}`);
    await juliet.send(xml("message", { to: m1.attrs.from, type: "chat", id: "m2" }, xml("body", {}, "Ay me")));
    const m2 = await romeo.waitFor("juliet's reply", () => romeo.find((s) => s.is("message") && s.getChildText("body")));
    if (m2.attrs.from !== juliet.jid || m2.attrs.type !== "chat" || m2.getChildText("body") !== "Ay me") {
      throw new Failure(`romeo got ${m2}`);
    }
    report(`OK ${romeo.name} got from=${m2.attrs.from} type=${m2.attrs.type}`);

    // juliet leaves: romeo sees unavailable presence.
    await juliet.logout();
    const un = await presenceFrom(romeo, julietBare, "unavailable");
    report(`OK ${romeo.name} unavailable from=${un.attrs.from}`);
    await romeo.logout();
  },
  {
    user1: { type: "string", default: "romeo" },
    user2: { type: "string", default: "juliet" },
    password: { type: "string" },
  },
);
