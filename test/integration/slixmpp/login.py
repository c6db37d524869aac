"""Log in once and report how.

  login.py --jid romeo@localhost --password P [--mech SCRAM-SHA-256] [--direct-tls]
  login.py ... --expect-failure      # a wrong password must fail cleanly

Prints "OK login jid=<bound JID> mech=<SASL mechanism> tls=<starttls|direct>
version=<TLS version>" on success, or with --expect-failure "OK auth-refused
condition=<SASL condition>" once slixmpp gave up, then "OK closed" when the
connection is gone.
"""

import asyncio

from common import Client, Failure, report, run


def extra(p):
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--mech', default=None, help='force this SASL mechanism')
    p.add_argument('--direct-tls', action='store_true', help='connect to --tls-port')
    p.add_argument('--no-channel-binding', action='store_true',
                   help='make slixmpp send the SCRAM gs2 flag "n" instead of "y"')
    p.add_argument('--expect-failure', action='store_true')


async def scenario(args):
    c = Client(args, args.jid, args.password, mech=args.mech)
    if args.no_channel_binding:
        c.without_channel_binding()
    tls = 'direct' if args.direct_tls else 'starttls'
    if args.expect_failure:
        try:
            await c.login(direct_tls=args.direct_tls)
        except Failure as e:
            if not c.sasl_failures:
                raise Failure('expected a SASL <failure/>, got: %s' % e) from None
            mech, cond, text = c.sasl_failures[-1]
            report('OK auth-refused mech=%s condition=%s attempts=%d' % (mech, cond, len(c.sasl_failures)))
        else:
            raise Failure('logged in as %s with a wrong password' % c.boundjid)
        # slixmpp closes the stream after its last failure; the server must
        # answer and close the connection.
        await c.wait_for('the connection to close', lambda: not c.is_connected(), timeout=5)
        report('OK closed')
        return

    await c.login(direct_tls=args.direct_tls)
    ssl_obj = c.transport.get_extra_info('ssl_object') if c.transport else None
    version = ssl_obj.version() if ssl_obj else 'none'
    if version == 'none':
        raise Failure('the session is not encrypted')
    report('OK login jid=%s mech=%s tls=%s version=%s' % (c.boundjid, c.mech_used, tls, version))
    if c.boundjid.bare != args.jid:
        raise Failure('bound JID %s is not a resource of %s' % (c.boundjid, args.jid))
    if not c.boundjid.resource:
        raise Failure('bound JID %s has no resource' % c.boundjid)
    await c.logout()
    report('OK logout')


if __name__ == '__main__':
    run(scenario, extra)
