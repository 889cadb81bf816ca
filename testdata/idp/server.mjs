// A real OpenID provider (oidc-provider) for usher's tests: it issues
// RFC 9068 JWT access tokens through the client credentials grant, with a
// groups claim, and serves discovery and its keys on 127.0.0.1:$PORT.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'usher-test',
    client_secret: 'usher-test-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'api://usher',
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
  extraTokenClaims: () => ({ groups: (process.env.GROUPS || 'CN=viewers,OU=groups').split(';') }),
});

provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
