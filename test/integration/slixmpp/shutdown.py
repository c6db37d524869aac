"""A connected client sees a graceful server stop.

  shutdown.py --jid romeo@localhost --password P

Logs in, prints "READY", then waits for the server to be stopped by the
caller (metronomectl stop): the stream must end with a
<system-shutdown/> stream error (RFC 6120 section 4.9.3.22) and the server
must close the connection.
"""

from common import Client, Failure, report, run


def extra(p):
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--wait', type=float, default=15, help='how long to wait for the stop')


async def scenario(args):
    c = Client(args, args.jid, args.password)
    await c.login()
    c.send_presence()
    await c.wait_for('own presence echo', lambda: c.presences)
    report('READY %s' % c.boundjid)

    await c.wait_for('a stream error', lambda: c.stream_errors, timeout=args.wait)
    err = c.stream_errors[0]
    report('OK stream-error condition=%s text=%r' % (err['condition'], err['text']))
    if err['condition'] != 'system-shutdown':
        raise Failure('stream error %s, want system-shutdown: %s' % (err['condition'], err))
    await c.wait_for('the server to close the connection', lambda: c.disconnects or not c.is_connected())
    report('OK disconnected')


if __name__ == '__main__':
    run(scenario, extra)
