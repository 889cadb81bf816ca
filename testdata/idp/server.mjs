// A real OpenID provider (oidc-provider) for usher's tests, serving
// discovery and its keys on 127.0.0.1:$PORT.
//
// - Client credentials: client usher-test issues RFC 9068 JWT access
//   tokens with a groups claim ($GROUPS, ';'-separated).
// - Browser login: with $REDIRECT_URIS set (comma-separated), the
//   confidential client usher-login (authorization code + PKCE S256,
//   refresh tokens, RP-initiated logout to $POST_LOGOUT_REDIRECT_URIS)
//   logs in the users below through a login form (any of them with the
//   password $PASSWORD, "secret" by default); consent is given at once.
//   ID tokens carry email, email_verified, name and groups.
// - Test controls on loopback: POST /admin/disable?user=U (the account
//   is gone: its refresh tokens are refused), /admin/enable?user=U,
//   /admin/groups?user=U&groups=a,b.
// $USERS (JSON, {"name": {email, email_verified, name, groups}}) adds or
// replaces users; $ID_TOKEN_TTL, $ACCESS_TOKEN_TTL and $REFRESH_TOKEN_TTL
// (seconds) shorten tokens.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const password = process.env.PASSWORD || 'secret';
const list = (v) => (v || '').split(',').map((s) => s.trim()).filter(Boolean);
const redirectURIs = list(process.env.REDIRECT_URIS);
const postLogoutURIs = list(process.env.POST_LOGOUT_REDIRECT_URIS);
const ttl = (name, def) => Number(process.env[name]) || def;

const users = {
  alice: { email: 'alice@acme.test', email_verified: true, name: 'Alice Archer', groups: ['editors'] },
  bob: { email: 'bob@acme.test', email_verified: true, name: 'Bob Baker', groups: ['viewers'] },
  mallory: { email: 'mallory@evil.test', email_verified: true, name: 'Mallory Moe', groups: ['editors'] },
  carol: { email: 'carol@acme.test', email_verified: false, name: 'Carol Clay', groups: ['viewers'] },
  ...JSON.parse(process.env.USERS || '{}'),
};
const disabled = new Set();

const clients = [{
  client_id: 'usher-test',
  client_secret: 'usher-test-secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
}];
if (redirectURIs.length > 0) {
  clients.push({
    client_id: 'usher-login',
    client_secret: 'usher-login-secret',
    client_name: 'usher',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: redirectURIs,
    post_logout_redirect_uris: postLogoutURIs,
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:22em;margin:3em auto}label,input,button{display:block;width:100%;margin:.4em 0}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>`;

const provider = new Provider(issuer, {
  clients,
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'api'],
  claims: {
    openid: ['sub', 'groups'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // the claims of the scopes go into the ID token
  cookies: { keys: ['usher-test-idp-cookie-key'] },
  pkce: { required: () => true },
  ttl: {
    AccessToken: ttl('ACCESS_TOKEN_TTL', 300),
    ClientCredentials: ttl('ACCESS_TOKEN_TTL', 300),
    IdToken: ttl('ID_TOKEN_TTL', 300),
    RefreshToken: ttl('REFRESH_TOKEN_TTL', 86400),
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  // Every refresh-capable client gets a refresh token, offline_access
  // or not.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async findAccount(ctx, id) {
    const u = users[id];
    if (!u || disabled.has(id)) return undefined;
    return {
      accountId: id,
      claims: async () => ({
        sub: id,
        email: u.email,
        email_verified: u.email_verified,
        name: u.name,
        preferred_username: id,
        groups: u.groups,
      }),
    };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `${form}<p>Sign out of the test OpenID provider?</p>
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<p>You are signed out of the test OpenID provider.</p>');
      },
    },
    resourceIndicators: {
      enabled: true,
      // Only the client credentials client gets JWT access tokens for a
      // resource; the login client's tokens stay for userinfo.
      defaultResource: (ctx, client) => (client?.clientId === 'usher-test' ? 'api://usher' : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'api',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: process.env.ALG || 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => ({
    groups: token.accountId
      ? users[token.accountId]?.groups || []
      : (process.env.GROUPS || 'CN=viewers,OU=groups').split(';'),
  }),
});

async function formBody(req) {
  let data = '';
  for await (const chunk of req) {
    data += chunk;
    if (data.length > 65536) throw new Error('body too large');
  }
  return new URLSearchParams(data);
}

// The login form and consent given at once.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return next();
  ctx.set('cache-control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { uid, prompt, params } = details;
  if (prompt.name === 'login') {
    let problem = '';
    if (ctx.method === 'POST' && m[2]) {
      const form = await formBody(ctx.req);
      const login = (form.get('login') || '').trim();
      const id = Object.keys(users).find((k) => k === login || users[k].email === login);
      if (id && !disabled.has(id) && form.get('password') === password) {
        await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
        ctx.respond = false;
        return undefined;
      }
      problem = '<p role="alert" id="error">Unknown user or wrong password.</p>';
      ctx.status = 401;
    }
    ctx.type = 'html';
    ctx.body = page('Sign in to the test IdP', `${problem}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="login">Username or email</label><input id="login" name="login" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit" id="submit">Sign in</button>
</form><p>Client: ${esc(params.client_id)}</p>`);
    return undefined;
  }
  if (prompt.name === 'consent') {
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.respond = false;
    return undefined;
  }
  ctx.status = 400;
  ctx.body = `unexpected prompt ${prompt.name}`;
  return undefined;
});

// Test controls.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/admin/')) return next();
  const user = ctx.query.user;
  if (ctx.method !== 'POST' || !users[user]) {
    ctx.status = 400;
    ctx.body = 'POST with ?user= of a known user';
    return undefined;
  }
  switch (ctx.path) {
    case '/admin/disable': disabled.add(user); break;
    case '/admin/enable': disabled.delete(user); break;
    case '/admin/groups': users[user].groups = list(ctx.query.groups); break;
    default: ctx.status = 404; return undefined;
  }
  ctx.status = 204;
  return undefined;
});

provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
