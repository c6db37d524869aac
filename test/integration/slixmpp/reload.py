"""A client stays connected across configuration reloads.

  reload.py --jid romeo@localhost --password P

Logs in and answers commands read from stdin, one per line, so that the
caller can change the configuration and reload in between:

  CHECK <tag>   query disco#info and jabber:iq:version of the server over
                the same connection; prints
                "OK check tag=<tag> connected=<0|1> stream-errors=<n>
                 features=<f1,f2,...> version=<name|error:condition>"
  QUIT          log out

Prints "READY <full JID>" once logged in.
"""

import asyncio
import sys

from slixmpp.exceptions import IqError, IqTimeout

from common import Client, Failure, report, run


def extra(p):
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)


async def check(c, tag, domain):
    try:
        info = await c['xep_0030'].get_info(jid=domain, timeout=5)
    except (IqError, IqTimeout) as e:
        raise Failure('disco#info of %s failed: %s' % (domain, getattr(e, 'iq', e))) from None
    features = sorted(info['disco_info']['features'])
    iq = c.Iq()
    iq['type'] = 'get'
    iq['to'] = domain
    iq.enable('software_version')
    try:
        res = await iq.send(timeout=5)
        version = res['software_version']['name'] or '(empty)'
    except IqError as e:
        version = 'error:%s' % e.iq['error']['condition']
    except IqTimeout:
        raise Failure('no answer to jabber:iq:version') from None
    report('OK check tag=%s connected=%d stream-errors=%d features=%s version=%s' % (
        tag, 1 if c.is_connected() else 0, len(c.stream_errors), ','.join(features), version))


async def scenario(args):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    c = Client(args, args.jid, args.password, plugins=['xep_0030', 'xep_0092'])
    await c.login()
    c.send_presence()
    report('READY %s' % c.boundjid)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == 'QUIT':
            break
        cmd, _, tag = line.partition(' ')
        if cmd != 'CHECK':
            raise Failure('unknown command %r' % line)
        if c.disconnects or not c.is_connected():
            raise Failure('the connection was lost before %s (stream errors: %s)' % (tag, [str(e) for e in c.stream_errors]))
        await check(c, tag, args.domain)
    await c.logout()
    report('OK logout')


if __name__ == '__main__':
    run(scenario, extra)
