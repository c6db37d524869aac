"""In-band registration (XEP-0077) of a new account, then a login with it.

  register.py --user newbie --password P

Prints "OK register-feature", "OK register-form fields=...", "OK registered",
"OK login jid=..." (the session of the registering stream), then
"OK relogin jid=..." (a fresh connection with the new credentials).
"""

import asyncio

from common import Client, Failure, report, run


def extra(p):
    p.add_argument('--user', required=True)
    p.add_argument('--password', required=True)


async def scenario(args):
    jid = '%s@%s' % (args.user, args.domain)
    c = Client(args, jid, args.password, plugins=['xep_0030', 'xep_0004', 'xep_0066', 'xep_0077'])
    # No force_registration: the server must offer the iq-register stream
    # feature itself (XEP-0077 section 7).
    #
    # slixmpp 1.8.3 holds back every stanza but bind/session IQs until the
    # session starts ("NOT SENT" in its log), including the plugin's own
    # pre-authentication registration IQs, which then never leave (later
    # slixmpp versions let register IQs through). Open that gate until SASL
    # succeeded.
    c._always_send_everything = True
    c.add_event_handler('auth_success', lambda _: setattr(c, '_always_send_everything', False))
    registered = asyncio.get_running_loop().create_future()

    async def on_register(form):
        # form is the result of the registration form request
        # (<iq type='get'><query xmlns='jabber:iq:register'/></iq>).
        report('OK register-feature')
        reg = form['register']
        fields = sorted(f for f in ('username', 'password', 'email') if reg.xml.find('{jabber:iq:register}' + f) is not None)
        report('OK register-form fields=%s' % ','.join(fields))
        if 'username' not in fields or 'password' not in fields:
            registered.set_exception(Failure('registration form lacks username/password: %s' % form))
            c.disconnect()
            return
        iq = c.Iq()
        iq['type'] = 'set'
        iq['register']['username'] = args.user
        iq['register']['password'] = args.password
        try:
            await c.iq(iq, 'registration')
        except Failure as e:
            registered.set_exception(e)
            c.disconnect()
            return
        report('OK registered user=%s' % args.user)
        registered.set_result(True)

    c.add_event_handler('register', on_register)
    try:
        await c.login()
    except Failure as e:
        if registered.done() and registered.exception():
            raise registered.exception() from None
        if not registered.done():
            raise Failure('no registration happened (did the server offer '
                          '<register xmlns="http://jabber.org/features/iq-register"/>?): %s' % e) from None
        raise
    if not registered.done():
        raise Failure('logged in without registering: the server did not offer the iq-register feature')
    await registered
    report('OK login jid=%s mech=%s' % (c.boundjid, c.mech_used))
    await c.logout()

    # A fresh connection with the new credentials.
    again = Client(args, jid, args.password, name=args.user + '-again')
    await again.login()
    report('OK relogin jid=%s mech=%s' % (again.boundjid, again.mech_used))
    await again.logout()


if __name__ == '__main__':
    run(scenario, extra)
