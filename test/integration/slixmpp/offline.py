"""Offline message storage and delivery (XEP-0160, with XEP-0203 delays).

  offline.py --user1 romeo --user2 juliet --password P

juliet logs in and out; romeo sends her three chat messages; juliet logs in
again, sends initial presence, and must receive all three, in order, from
romeo's full JID, each with a <delay xmlns='urn:xmpp:delay'/> whose 'from' is
the server's domain and whose 'stamp' is a UTC time not in the future and
not before the message was sent.
"""

import datetime

from common import NS_DELAY, Client, Failure, first, report, run


def extra(p):
    p.add_argument('--user1', default='romeo')
    p.add_argument('--user2', default='juliet')
    p.add_argument('--password', required=True)


def parse_stamp(s):
    # XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD 'Z' or +hh:mm.
    if s.endswith('Z'):
        s = s[:-1] + '+00:00'
    t = datetime.datetime.fromisoformat(s)
    if t.tzinfo is None:
        raise ValueError('no time zone')
    return t


async def scenario(args):
    romeo_jid = '%s@%s' % (args.user1, args.domain)
    juliet_jid = '%s@%s' % (args.user2, args.domain)

    juliet = Client(args, juliet_jid, args.password)
    await juliet.login()
    juliet.send_presence()
    await juliet.logout()
    report('OK juliet-offline')

    romeo = Client(args, romeo_jid, args.password)
    await romeo.login()
    romeo.send_presence()
    # One second of slack: XEP-0082 stamps may be truncated to seconds.
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(seconds=1)
    bodies = ['offline %d of 3' % i for i in (1, 2, 3)]
    for b in bodies:
        romeo.send_message(mto=juliet_jid, mbody=b, mtype='chat')
    # The server handles one stream's stanzas in order: once this iq is
    # answered, the three messages were routed (stored).
    ping = romeo.Iq()
    ping['type'] = 'get'
    ping.enable('roster')
    await romeo.iq(ping, 'roster get after the messages')
    report('OK sent count=3')
    if first(romeo.messages, lambda m: m['type'] == 'error'):
        raise Failure('romeo got an error back: %s' % first(romeo.messages, lambda m: m['type'] == 'error'))

    juliet = Client(args, juliet_jid, args.password, name='juliet-again')
    await juliet.login()
    juliet.send_presence()  # XEP-0160 section 3: delivery follows initial presence
    got = await juliet.wait_for('3 offline messages (messages so far: %s)' % juliet.messages,
                                lambda: len([m for m in juliet.messages if m['body']]) >= 3 and juliet.messages)
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    got = [m for m in got if m['body']]
    if [m['body'] for m in got] != bodies:
        raise Failure('bodies %s, want %s in this order' % ([m['body'] for m in got], bodies))
    for m in got:
        if m['from'].full != romeo.boundjid.full:
            raise Failure('offline message from %s, want %s: %s' % (m['from'], romeo.boundjid, m))
        delays = m.xml.findall('{%s}delay' % NS_DELAY)
        if len(delays) != 1:
            raise Failure('offline message has %d XEP-0203 <delay/> elements, want 1: %s' % (len(delays), m))
        d = delays[0]
        if d.get('from') != args.domain:
            raise Failure('<delay/> from=%r, want the server %r: %s' % (d.get('from'), args.domain, m))
        try:
            stamp = parse_stamp(d.get('stamp', ''))
        except ValueError as e:
            raise Failure('<delay/> stamp %r is not a XEP-0082 DateTime (%s): %s' % (d.get('stamp'), e, m)) from None
        if not before <= stamp <= after:
            raise Failure('<delay/> stamp %s outside [%s, %s]: %s' % (stamp, before, after, m))
        report('OK offline-delivered body=%r from=%s delay-from=%s stamp=%s' % (m['body'], m['from'], d.get('from'), d.get('stamp')))
    report('OK offline count=%d in-order' % len(got))
    await juliet.logout()

    # Delivered messages leave the store: the next login gets none. The
    # server handles a stream's stanzas in order, so any redelivery caused
    # by the initial presence arrives before the answer to the iq after it.
    juliet = Client(args, juliet_jid, args.password, name='juliet-third')
    await juliet.login()
    juliet.send_presence()
    ping = juliet.Iq()
    ping['type'] = 'get'
    ping.enable('roster')
    await juliet.iq(ping, 'roster get after initial presence')
    again = [m for m in juliet.messages if m['body']]
    if again:
        raise Failure('offline messages delivered again at the next login: %s' % [str(m) for m in again])
    report('OK no-redelivery')

    await juliet.logout()
    await romeo.logout()


if __name__ == '__main__':
    run(scenario, extra)
