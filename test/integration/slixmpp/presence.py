"""Roster and presence subscription between two users (RFC 6121 sections 2-4).

  presence.py --user1 romeo --user2 juliet --password P

romeo adds juliet to his roster (roster push), subscribes; juliet approves
and subscribes back; romeo approves. Each step checks the roster pushes and
the presence stanzas that RFC 6121 requires, ending with subscription "both"
on each side, each seeing the other's available presence, a presence change,
and finally juliet's unavailable presence when she logs out.
"""

from common import Client, Failure, first, report, run

NS_ROSTER = 'jabber:iq:roster'


def extra(p):
    p.add_argument('--user1', default='romeo')
    p.add_argument('--user2', default='juliet')
    p.add_argument('--password', required=True)


async def full_roster(c):
    """The whole roster: a get without 'ver' (slixmpp's get_roster sends the
    version it knows, and the answer to that may rightly be empty)."""
    iq = c.Iq()
    iq['type'] = 'get'
    iq.enable('roster')
    return await c.iq(iq, 'roster get')


def push_item(iq, jid):
    """The <item/> for jid in a roster push, as a dict, or None."""
    for item in iq.xml.iter('{%s}item' % NS_ROSTER):
        if item.get('jid') == jid:
            return {
                'subscription': item.get('subscription', 'none'),
                'ask': item.get('ask'),
                'name': item.get('name'),
                'groups': sorted(g.text or '' for g in item.findall('{%s}group' % NS_ROSTER)),
            }
    return None


async def expect_push(c, jid, subscription, ask=None, start=0):
    """Wait for a roster push (after index start) with jid in this state."""
    def found():
        for i, iq in enumerate(c.roster_pushes[start:], start):
            it = push_item(iq, jid)
            if it and it['subscription'] == subscription and it['ask'] == ask:
                return (i, it)
        return None
    what = 'a roster push of %s with subscription=%s ask=%s (pushes so far: %s)' % (
        jid, subscription, ask, [str(p) for p in c.roster_pushes])
    i, it = await c.wait_for(what, found)
    report('OK %s roster-push jid=%s subscription=%s ask=%s' % (c.name, jid, it['subscription'], it['ask']))
    return i + 1, it


async def expect_presence(c, frm, ptype=None, show=None, bare=False):
    """Wait for a presence of type ptype (None: available) from frm."""
    def found():
        return first(c.presences, lambda p: (p['from'].bare if bare else p['from'].full) == frm
                     and p.xml.get('type') == ptype
                     and (show is None or p['show'] == show))
    what = 'presence type=%s show=%s from %s (presences so far: %s)' % (
        ptype, show, frm, [str(p) for p in c.presences])
    p = await c.wait_for(what, found)
    report('OK %s presence from=%s type=%s show=%s' % (c.name, p['from'], ptype or 'available', p['show'] or '-'))
    c.presences.remove(p)
    return p


async def scenario(args):
    romeo_jid = '%s@%s' % (args.user1, args.domain)
    juliet_jid = '%s@%s' % (args.user2, args.domain)
    romeo = Client(args, romeo_jid, args.password)
    juliet = Client(args, juliet_jid, args.password)
    await romeo.login()
    await juliet.login()
    report('OK login %s %s' % (romeo.boundjid, juliet.boundjid))

    for c in (romeo, juliet):
        roster = await full_roster(c)
        items = [i.get('jid') for i in roster.xml.iter('{%s}item' % NS_ROSTER)]
        if items:
            raise Failure('%s: roster of a new account is not empty: %s' % (c.name, items))
        c.send_presence()
    report('OK rosters-empty')

    # RFC 6121 2.3: romeo adds juliet; the server pushes the new item.
    iq = romeo.Iq()
    iq['type'] = 'set'
    iq['roster']['items'] = {juliet_jid: {'name': 'Juliet', 'subscription': 'none', 'groups': ['Friends']}}
    await romeo.iq(iq, 'roster set')
    rp, item = await expect_push(romeo, juliet_jid, 'none')
    if item['name'] != 'Juliet' or item['groups'] != ['Friends']:
        raise Failure('romeo: pushed item lost its name/groups: %s' % item)

    # RFC 6121 3.1.2: romeo subscribes; the pushed item gets ask="subscribe"
    # and juliet receives the request from romeo's bare JID.
    romeo.send_presence(pto=juliet_jid, ptype='subscribe')
    rp, _ = await expect_push(romeo, juliet_jid, 'none', ask='subscribe', start=rp)
    await expect_presence(juliet, romeo_jid, 'subscribe')

    # RFC 6121 3.1.5: juliet approves.
    juliet.send_presence(pto=romeo_jid, ptype='subscribed')
    jp, _ = await expect_push(juliet, romeo_jid, 'from')
    await expect_presence(romeo, juliet_jid, 'subscribed', bare=True)
    rp, _ = await expect_push(romeo, juliet_jid, 'to', start=rp)
    # ... and juliet's server sends romeo her current presence.
    await expect_presence(romeo, str(juliet.boundjid))

    # Now juliet subscribes to romeo, and he approves.
    juliet.send_presence(pto=romeo_jid, ptype='subscribe')
    jp, _ = await expect_push(juliet, romeo_jid, 'from', ask='subscribe', start=jp)
    await expect_presence(romeo, juliet_jid, 'subscribe', bare=True)
    romeo.send_presence(pto=juliet_jid, ptype='subscribed')
    rp, _ = await expect_push(romeo, juliet_jid, 'both', start=rp)
    await expect_presence(juliet, romeo_jid, 'subscribed', bare=True)
    jp, _ = await expect_push(juliet, romeo_jid, 'both', start=jp)
    await expect_presence(juliet, str(romeo.boundjid))

    # The roster as stored, fetched again.
    for c, other in ((romeo, juliet_jid), (juliet, romeo_jid)):
        roster = await full_roster(c)
        sub = [i.get('subscription') for i in roster.xml.iter('{%s}item' % NS_ROSTER) if i.get('jid') == other]
        if sub != ['both']:
            raise Failure('%s: roster item %s has subscription %s, want both' % (c.name, other, sub))
    report('OK rosters-both')

    # A presence broadcast reaches the contact (RFC 6121 4.4).
    romeo.send_presence(pshow='away', pstatus='reading')
    await expect_presence(juliet, str(romeo.boundjid), show='away')

    # Logging out broadcasts unavailable (RFC 6121 4.5).
    jfull = str(juliet.boundjid)
    await juliet.logout()
    await expect_presence(romeo, jfull, 'unavailable')
    await romeo.logout()


if __name__ == '__main__':
    run(scenario, extra)
