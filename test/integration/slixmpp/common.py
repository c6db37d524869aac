"""Shared helpers for the slixmpp interop scripts.

The Go tests in test/integration run each script with /usr/bin/python3 against
a freshly built metronome daemon. Every script:

  * takes --host, --port (STARTTLS), --tls-port (direct TLS) and --domain;
  * prints machine-checkable lines on stdout ("OK <what> key=value ...",
    "INFO ...", and finally "PASS", or "FAIL <reason>");
  * logs slixmpp at DEBUG level on stderr, which includes every XML stanza
    sent and received, so that a failure shows what the server did;
  * is bounded: the whole scenario runs under asyncio.wait_for, and SIGALRM
    kills the process if even the event loop hangs.

Written against slixmpp 1.8.3 (Debian python3-slixmpp).
"""

import argparse
import asyncio
import logging
import signal
import ssl
import sys
import traceback

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

NS_DELAY = 'urn:xmpp:delay'

xml_log = logging.getLogger('xml')


class Failure(Exception):
    """A scenario step failed; the message says which and why."""


def report(*words):
    print(' '.join(str(w) for w in words), flush=True)


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument('--host', default='localhost', help='address to connect to')
    p.add_argument('--port', type=int, required=True, help='c2s (STARTTLS) port')
    p.add_argument('--tls-port', type=int, default=0, help='c2s_tls (direct TLS) port')
    p.add_argument('--domain', default='localhost', help='XMPP domain of the accounts')
    p.add_argument('--timeout', type=float, default=20, help='bound of the whole scenario, in seconds')
    if extra:
        extra(p)
    return p.parse_args()


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP that connects to the test server and records what it gets.

    Incoming messages, presences, roster pushes, SASL failures and stream
    errors are appended to lists; wait_for() waits until one matches.
    """

    def __init__(self, args, jid, password, mech=None, plugins=(), name=None):
        super().__init__(jid, password, sasl_mech=mech)
        self.args = args
        self.name = name or jid.split('@')[0]
        # The server's certificate is self-signed; hostname and chain checks
        # are not what these tests are about.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ssl_context = ctx
        # Resolve --host with the system resolver, IPv4 only: the server
        # listens on 127.0.0.1.
        self.use_ipv6 = False
        self.use_aiodns = False
        # Every subscription answer must be an explicit step of a scenario:
        # None means "ask the application" (False would refuse every request
        # with an automatic 'unsubscribed').
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        for p in plugins:
            self.register_plugin(p)

        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.changed = asyncio.Event()
        self.mech_used = None
        self.messages = []
        self.presences = []
        self.roster_pushes = []
        self.sasl_failures = []
        self.stream_errors = []
        self.disconnects = 0

        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('auth_success', self._on_auth_success)
        self.add_event_handler('failed_auth', self._on_failed_auth)
        self.add_event_handler('failed_all_auth', self._on_failed_all_auth)
        self.add_event_handler('stream_error', self._on_stream_error)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('connection_failed', self._on_connection_failed)
        self.add_event_handler('message', self._record(self.messages))
        self.add_event_handler('presence', self._record(self.presences))
        self.add_event_handler('roster_update', self._on_roster_update)

    def without_channel_binding(self):
        """Act as a client without channel-binding support.

        slixmpp 1.8.3 knows only tls-unique. Whenever the TLS layer gives it
        that value it sends the SCRAM gs2 flag "y" ("I support channel
        binding but think the server does not") with a non-PLUS mechanism,
        even though the server offered -PLUS mechanisms; RFC 5802 section 6
        requires the server to refuse that as a possible downgrade. Without
        the value it sends "n" instead.
        """
        mechs = self['feature_mechanisms']
        creds = mechs.sasl_callback

        def no_cb(required, optional):
            r = creds(required, optional)
            if 'channel_binding' in r:
                r['channel_binding'] = None
            return r
        mechs.sasl_callback = no_cb

    # Every byte in and out, tagged with the client's name: slixmpp's own
    # SEND/RECV lines do not say which client of a scenario they belong to.
    def data_received(self, data):
        xml_log.debug('%s <<< %s', self.name, data.decode('utf-8', 'replace'))
        super().data_received(data)

    def send_raw(self, data):
        xml_log.debug('%s >>> %s', self.name, data if isinstance(data, str) else data.decode('utf-8', 'replace'))
        super().send_raw(data)

    # --- recording -----------------------------------------------------

    def _record(self, into):
        def handler(stanza):
            into.append(stanza)
            self.changed.set()
        return handler

    def _settle(self, exc=None):
        if not self.started.done():
            if exc is None:
                self.started.set_result(True)
            else:
                self.started.set_exception(exc)
        self.changed.set()

    def _on_session_start(self, _):
        self._settle()

    def _on_auth_success(self, _):
        self.mech_used = self['feature_mechanisms'].mech.name

    def _on_failed_auth(self, stanza):
        mech = self['feature_mechanisms'].mech.name
        cond = stanza['condition']
        text = stanza['text']
        self.sasl_failures.append((mech, cond, text))
        report('INFO', self.name, 'sasl-failure', 'mech=%s' % mech, 'condition=%s' % cond,
               'text=%r' % text)
        self.changed.set()

    def _on_failed_all_auth(self, _):
        self._settle(Failure('%s: authentication failed with every mechanism: %r'
                             % (self.name, self.sasl_failures)))

    def _on_stream_error(self, err):
        self.stream_errors.append(err)
        self._settle(Failure('%s: stream error %s %r before the session started'
                             % (self.name, err['condition'], err['text'])))

    def _on_disconnected(self, reason):
        self.disconnects += 1
        self._settle(Failure('%s: disconnected before the session started (%s)'
                             % (self.name, reason)))

    def _on_connection_failed(self, reason):
        self._settle(Failure('%s: connection failed: %s' % (self.name, reason)))

    def _on_roster_update(self, iq):
        if iq['type'] == 'set':
            self.roster_pushes.append(iq)
            self.changed.set()

    # --- actions ---------------------------------------------------------

    async def login(self, direct_tls=False, timeout=10):
        """Connect, authenticate, bind; return when the session started."""
        port = self.args.tls_port if direct_tls else self.args.port
        if not port:
            raise Failure('no port given for %s' % ('direct TLS' if direct_tls else 'STARTTLS'))
        # slixmpp 1.8.3 resolves the host itself and takes the port of the
        # answer from default_port, not from the address given to connect().
        self.default_port = port
        if direct_tls:
            self.connect((self.args.host, port), use_ssl=True, force_starttls=False,
                         disable_starttls=True)
        else:
            self.connect((self.args.host, port), use_ssl=False, force_starttls=True,
                         disable_starttls=False)
        try:
            await asyncio.wait_for(asyncio.shield(self.started), timeout)
        except asyncio.TimeoutError:
            raise Failure('%s: no session within %ss' % (self.name, timeout)) from None
        # From now on the handlers only record; a later disconnect is checked
        # by the scenario itself.
        return self

    async def logout(self, timeout=5):
        if not self.is_connected():
            return
        try:
            await asyncio.wait_for(self.disconnect(wait=timeout - 1), timeout)
        except asyncio.TimeoutError:
            raise Failure('%s: the server did not close the stream within %ss' % (self.name, timeout)) from None

    async def wait_for(self, what, found, timeout=5):
        """Wait until found() returns a true value and return it.

        found is called after every recorded stanza; what describes the
        expectation for the failure message.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            v = found()
            if v:
                return v
            left = deadline - loop.time()
            if left <= 0:
                raise Failure('%s: timed out after %ss waiting for %s' % (self.name, timeout, what))
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def iq(self, iq, what, timeout=5):
        """Send an iq and return the result; errors become Failure."""
        try:
            return await iq.send(timeout=timeout)
        except IqError as e:
            raise Failure('%s: %s: error reply %s' % (self.name, what, e.iq)) from None
        except IqTimeout:
            raise Failure('%s: %s: no reply within %ss' % (self.name, what, timeout)) from None


def first(items, pred):
    for it in items:
        if pred(it):
            return it
    return None


def run(scenario, extra_args=None):
    """Run the coroutine scenario(args) with the bounds described above."""
    args = parse_args(extra_args)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format='%(asctime)s %(levelname)-7s %(name)s: %(message)s')
    # Last resort if the event loop itself hangs: SIGALRM's default action
    # terminates the process.
    signal.alarm(int(args.timeout) + 10)

    async def bounded():
        await asyncio.wait_for(scenario(args), args.timeout)

    try:
        asyncio.run(bounded())
    except Failure as e:
        report('FAIL', e)
        sys.exit(1)
    except asyncio.TimeoutError:
        report('FAIL scenario did not finish within %ss' % args.timeout)
        sys.exit(1)
    except Exception as e:  # a bug in the script or an unexpected slixmpp error
        traceback.print_exc()
        report('FAIL unexpected %s: %s' % (type(e).__name__, e))
        sys.exit(1)
    report('PASS')
