// Log in with SCRAM-SHA-256 (gs2 flag "n"), over STARTTLS or direct TLS
// (--direct-tls), get the roster, send initial presence and see it come
// back to the sending resource (RFC 6121 §4.2.2), then log out.
//
//   node login.js --port P --tls-port P2 --user romeo --password S [--direct-tls]

import { Client, Failure, bare, report, run, xml, NS_ROSTER } from "./common.js";

run(
  async (args) => {
    const c = new Client(args, args.user, args.password, { directTLS: args["direct-tls"] });
    const jid = await c.login();
    const mode = args["direct-tls"] ? "direct" : "starttls";
    if (c.tls === "none") throw new Failure(`logged in without TLS (${mode})`);
    report(`OK login jid=${jid} mech=${c.mech} tls=${mode} protocol=${c.tls} server-signature=verified`);
    if (bare(jid) !== `${args.user}@${args.domain}`) throw new Failure(`bound JID ${jid}`);

    const res = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })), "roster get");
    const q = res.getChild("query", NS_ROSTER);
    if (!q) throw new Failure(`roster result without <query xmlns='${NS_ROSTER}'/>: ${res}`);
    report(`OK roster items=${q.getChildren("item").length}`);

    await c.send(xml("presence", {}, xml("status", {}, "xmpp.js here")));
    const p = await c.waitFor("own initial presence echoed", () =>
      c.find((s) => s.is("presence") && s.attrs.from === jid && !s.attrs.type),
    );
    report(`OK presence-echo from=${p.attrs.from} status=${JSON.stringify(p.getChildText("status"))}`);

    await c.logout();
    report("OK logout");
  },
  {
    user: { type: "string" },
    password: { type: "string" },
    "direct-tls": { type: "boolean", default: false },
  },
);
