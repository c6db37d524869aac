"""One-to-one chat (RFC 6121 section 5, 8.5).

  chat.py --user1 romeo --user2 juliet --password P

romeo sends a chat message to juliet's bare JID; juliet receives it from
romeo's full JID with the same body, and replies to that full JID; romeo
receives the reply from juliet's full JID.
"""

from common import Client, Failure, first, report, run


def extra(p):
    p.add_argument('--user1', default='romeo')
    p.add_argument('--user2', default='juliet')
    p.add_argument('--password', required=True)


async def expect_message(c, frm, body):
    def found():
        return first(c.messages, lambda m: m['body'] == body)
    m = await c.wait_for('a message with body %r (messages so far: %s)' % (body, [str(m) for m in c.messages]), found)
    if m['from'].full != frm:
        raise Failure('%s: message %r came from %s, want %s: %s' % (c.name, body, m['from'], frm, m))
    if m['type'] != 'chat':
        raise Failure('%s: message %r has type %s, want chat: %s' % (c.name, body, m['type'], m))
    if m['to'].full != c.boundjid.full and m['to'].full != c.boundjid.bare:
        raise Failure('%s: message %r is addressed to %s: %s' % (c.name, body, m['to'], m))
    report('OK %s got from=%s type=%s body=%r' % (c.name, m['from'], m['type'], m['body']))
    return m


async def scenario(args):
    romeo = Client(args, '%s@%s' % (args.user1, args.domain), args.password)
    juliet = Client(args, '%s@%s' % (args.user2, args.domain), args.password)
    await romeo.login()
    await juliet.login()
    # Messages to a bare JID go to available resources (RFC 6121 8.5.2.1.1).
    romeo.send_presence()
    juliet.send_presence()
    await romeo.wait_for('own presence echo', lambda: first(romeo.presences, lambda p: p['from'] == romeo.boundjid))
    await juliet.wait_for('own presence echo', lambda: first(juliet.presences, lambda p: p['from'] == juliet.boundjid))
    report('OK online %s %s' % (romeo.boundjid, juliet.boundjid))

    body = 'Art thou not Romeo, and a Montague?'
    romeo.send_message(mto=juliet.boundjid.bare, mbody=body, mtype='chat')
    m = await expect_message(juliet, romeo.boundjid.full, body)

    reply = 'Neither, fair maid, if either thee dislike.'
    r = m.reply(reply)
    r.send()
    await expect_message(romeo, juliet.boundjid.full, reply)

    # A message to a full JID reaches exactly that resource.
    direct = 'With love\'s light wings did I o\'erperch these walls.'
    romeo.send_message(mto=juliet.boundjid.full, mbody=direct, mtype='chat')
    await expect_message(juliet, romeo.boundjid.full, direct)

    await juliet.logout()
    await romeo.logout()


if __name__ == '__main__':
    run(scenario, extra)
