"""Message carbons between two resources (XEP-0280) and archive paging
(XEP-0313 with XEP-0059), with slixmpp's own plugins.

  carbons_mam.py --user1 romeo --user2 juliet --password P

juliet logs in twice (balcony, chamber) and enables carbons on both. romeo
sends to juliet/balcony: chamber gets a received carbon with that body.
balcony answers romeo: chamber gets a sent carbon. romeo then sends 25 more
messages to juliet's bare JID. juliet pages through her archive ten at a
time, forwards then backwards, and must see the 27 messages exactly once,
in order, each with an archive id.
"""

from common import Client, Failure, report, run

PLUGINS = ['xep_0030', 'xep_0059', 'xep_0297', 'xep_0280', 'xep_0313']


def extra(p):
    p.add_argument('--user1', default='romeo')
    p.add_argument('--user2', default='juliet')
    p.add_argument('--password', required=True)


async def scenario(args):
    romeo_jid = '%s@%s' % (args.user1, args.domain)
    juliet_jid = '%s@%s' % (args.user2, args.domain)

    balcony = Client(args, juliet_jid + '/balcony', args.password, plugins=PLUGINS, name='balcony')
    chamber = Client(args, juliet_jid + '/chamber', args.password, plugins=PLUGINS, name='chamber')
    carbons = []  # (kind, inner message) seen by chamber

    def on_received(msg):
        carbons.append(('received', msg['carbon_received']))
        chamber.changed.set()

    def on_sent(msg):
        carbons.append(('sent', msg['carbon_sent']))
        chamber.changed.set()
    chamber.add_event_handler('carbon_received', on_received)
    chamber.add_event_handler('carbon_sent', on_sent)

    for c in (balcony, chamber):
        await c.login()
        c.send_presence()
        try:
            await c['xep_0280'].enable(timeout=5)
        except Exception as e:  # IqError, IqTimeout
            raise Failure('%s: enabling carbons failed: %s' % (c.name, e)) from None
    report('OK carbons enabled on both resources')

    romeo = Client(args, romeo_jid, args.password, plugins=PLUGINS)
    await romeo.login()
    romeo.send_presence()

    romeo.send_message(mto=juliet_jid + '/balcony', mbody='hello balcony', mtype='chat')
    kind, m = await chamber.wait_for('a received carbon', lambda: next((c for c in carbons if c[0] == 'received'), None))
    if m['body'] != 'hello balcony' or m['to'].full != juliet_jid + '/balcony':
        raise Failure('received carbon carries %s' % m)
    report('OK chamber got a received carbon body=%r' % m['body'])

    balcony.send_message(mto=romeo.boundjid.full, mbody='reply from balcony', mtype='chat')
    kind, m = await chamber.wait_for('a sent carbon', lambda: next((c for c in carbons if c[0] == 'sent'), None))
    if m['body'] != 'reply from balcony' or m['from'].full != juliet_jid + '/balcony':
        raise Failure('sent carbon carries %s' % m)
    report('OK chamber got a sent carbon body=%r' % m['body'])
    if any(b['body'] == 'hello balcony' for b in chamber.messages if b['to'].full == chamber.boundjid.full and not b['carbon_received']['body']):
        raise Failure('chamber got the full-JID message itself, not only its carbon')

    bodies = ['hello balcony', 'reply from balcony'] + ['archived %02d' % i for i in range(25)]
    for b in bodies[2:]:
        romeo.send_message(mto=juliet_jid, mbody=b, mtype='chat')
    await balcony.wait_for('the 25 messages', lambda: len([m for m in balcony.messages if m['body'].startswith('archived')]) >= 25)
    report('OK 25 more messages delivered')

    for reverse in (False, True):
        got, ids = [], []
        async for r in balcony['xep_0313'].iterate(rsm={'max': 10}, reverse=reverse):
            inner = r['mam_result']['forwarded']['stanza']
            got.append(inner['body'])
            ids.append(r['mam_result']['id'])
        want = list(reversed(bodies)) if reverse else bodies
        if got != want:
            raise Failure('archive %s: got %r, want %r' % ('backwards' if reverse else 'forwards', got, want))
        if len(set(ids)) != len(ids) or not all(ids):
            raise Failure('archive ids missing or repeated: %r' % ids)
        report('OK archive paged %s count=%d pages-of=10' % ('backwards' if reverse else 'forwards', len(got)))

    for c in (romeo, balcony, chamber):
        await c.logout()


if __name__ == '__main__':
    run(scenario, extra)
