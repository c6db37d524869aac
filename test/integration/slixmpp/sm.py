"""Stream management (XEP-0198) with slixmpp's own plugin: resumption after
the TCP connection dies, and what survives a server restart.

  sm.py --mode resume --password P
  sm.py --mode restart --password P     (the caller restarts the server)

resume: juliet/phone enables stream management with resumption and gets
messages 1-5 from romeo. Her TCP connection is then aborted (no closing
tag, no TLS close). romeo sends 6-10 while she is away. juliet reconnects:
slixmpp resumes the session, and she must have seen 1-10 exactly once, in
order, without sending presence or asking for the roster again. She then
answers romeo over the resumed stream.

restart: juliet/phone (stream management) sends five messages to romeo,
who is offline, and waits until the server acknowledged all five. Her
connection is aborted; nurse sends her three messages while she is away.
The script prints READY and waits for a line on stdin: meanwhile the caller
restarts the server (gracefully with `metronomectl stop`, or by SIGKILL).
Then juliet comes back: the resumption fails (the server forgot the
session), she binds a new session, and must get nurse's messages, from
offline storage after a graceful stop, or from her archive (XEP-0313) after
a crash. romeo logs in and must get juliet's five acknowledged messages from
offline storage.
"""

import asyncio
import sys

from common import Client, Failure, report, run

PLUGINS = ['xep_0030', 'xep_0059', 'xep_0297', 'xep_0198', 'xep_0313']


def extra(p):
    p.add_argument('--mode', choices=['resume', 'restart'], required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--crash', action='store_true', help='restart mode: the server is killed, not stopped')


def bodies(c, prefix):
    return [m['body'] for m in c.messages if m['body'].startswith(prefix)]


async def sm_enabled(c):
    for ev in ('sm_enabled', 'stanza_acked', 'session_resumed'):
        c.add_event_handler(ev, lambda _: c.changed.set())
    await c.wait_for('stream management enabled', lambda: c['xep_0198'].sm_id, timeout=5)


async def abort(c):
    """Drop the TCP connection as a dead network would: no closing tag."""
    lost = asyncio.get_running_loop().create_future()
    c.add_event_handler('disconnected', lambda _: lost.done() or lost.set_result(True))
    c.transport.abort()
    await asyncio.wait_for(lost, 5)


async def reconnect(c):
    """Connect again; slixmpp resumes (or, if that fails, binds anew)."""
    back = asyncio.get_running_loop().create_future()

    def done(name):
        return lambda _: back.done() or back.set_result(name)
    c.add_event_handler('session_resumed', done('resumed'))
    c.add_event_handler('session_start', done('new session'))
    c.connect((c.args.host, c.args.port), use_ssl=False, force_starttls=True, disable_starttls=False)
    return await asyncio.wait_for(back, 10)


async def resume_mode(args):
    d = args.domain
    juliet = Client(args, 'juliet@%s/phone' % d, args.password, plugins=PLUGINS, name='juliet')
    romeo = Client(args, 'romeo@%s/orchard' % d, args.password, name='romeo')
    await juliet.login()
    juliet.send_presence()
    await sm_enabled(juliet)
    report('OK enabled id=%s' % juliet['xep_0198'].sm_id)
    await romeo.login()
    for i in range(1, 6):
        romeo.send_message(mto='juliet@%s/phone' % d, mbody='m%02d' % i, mtype='chat')
    await juliet.wait_for('messages 1-5', lambda: len(bodies(juliet, 'm')) >= 5)

    await abort(juliet)
    report('OK connection aborted')
    for i in range(6, 11):
        romeo.send_message(mto='juliet@%s/phone' % d, mbody='m%02d' % i, mtype='chat')
    await asyncio.sleep(0.3)

    how = await reconnect(juliet)
    if how != 'resumed':
        raise Failure('juliet came back with a %s, not a resumption' % how)
    report('OK resumed')
    await juliet.wait_for('messages 6-10', lambda: len(bodies(juliet, 'm')) >= 10)
    await asyncio.sleep(0.5)  # anything duplicated would arrive by now
    got = bodies(juliet, 'm')
    want = ['m%02d' % i for i in range(1, 11)]
    if got != want:
        raise Failure('juliet got %s, want %s' % (got, want))
    report('OK messages count=%d in order, none duplicated' % len(got))

    juliet.send_message(mto=romeo.boundjid.full, mbody='after resume', mtype='chat')
    await romeo.wait_for('the answer', lambda: bodies(romeo, 'after resume'))
    report('OK answer over the resumed stream')
    await juliet.logout()
    await romeo.logout()


async def restart_mode(args):
    d = args.domain
    juliet = Client(args, 'juliet@%s/phone' % d, args.password, plugins=PLUGINS, name='juliet')
    nurse = Client(args, 'nurse@%s/kitchen' % d, args.password, name='nurse')
    await juliet.login()
    juliet.send_presence()
    await sm_enabled(juliet)
    sm = juliet['xep_0198']
    for i in range(1, 6):
        juliet.send_message(mto='romeo@%s' % d, mbody='j%02d' % i, mtype='chat')
    # Presence and five messages: h=6. slixmpp queues stanzas on its event
    # loop and writes <r/> at once, so ask until the answer covers them.
    for _ in range(50):
        await asyncio.sleep(0.1)
        if sm.last_ack >= 6 and not sm.unacked_queue:
            break
        sm.request_ack()
    else:
        raise Failure('the server did not acknowledge the five messages: h=%d' % sm.last_ack)
    report('OK acknowledged h=%d' % sm.last_ack)

    await nurse.login()
    await abort(juliet)
    for i in range(1, 4):
        nurse.send_message(mto='juliet@%s' % d, mbody='n%02d' % i, mtype='chat')
    await asyncio.sleep(0.5)
    await nurse.logout()
    report('READY')

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != 'GO':
        raise Failure('expected GO on stdin, got %r' % line)

    juliet.messages.clear()
    how = await reconnect(juliet)
    if how != 'new session':
        raise Failure('juliet came back with a %s after the restart' % how)
    report('OK resumption refused after the restart, new session bound')
    juliet.send_presence()
    want = ['n01', 'n02', 'n03']
    if args.crash:
        got = []
        async for r in juliet['xep_0313'].iterate(rsm={'max': 10}):
            got.append(r['mam_result']['forwarded']['stanza']['body'])
        got = [b for b in got if b.startswith('n')]
        where = 'archive'
    else:
        await juliet.wait_for("nurse's messages", lambda: len(bodies(juliet, 'n')) >= 3)
        await asyncio.sleep(0.3)
        got = bodies(juliet, 'n')
        where = 'offline'
    if got != want:
        raise Failure('juliet found %s in her %s, want %s' % (got, where, want))
    report('OK juliet found nurse messages in %s count=%d' % (where, len(got)))

    romeo = Client(args, 'romeo@%s/orchard' % d, args.password, name='romeo')
    await romeo.login()
    romeo.send_presence()
    await romeo.wait_for("juliet's five messages", lambda: len(bodies(romeo, 'j')) >= 5)
    await asyncio.sleep(0.3)
    got = bodies(romeo, 'j')
    if got != ['j%02d' % i for i in range(1, 6)]:
        raise Failure('romeo got %s' % got)
    report('OK acknowledged messages survived count=%d' % len(got))
    await juliet.logout()
    await romeo.logout()


async def scenario(args):
    if args.mode == 'resume':
        await resume_mode(args)
    else:
        await restart_mode(args)


if __name__ == '__main__':
    run(scenario, extra)
