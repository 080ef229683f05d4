// Starts GraphiQL on QChat's API: queries and mutations over HTTP on /graphql,
// subscriptions over graphql-transport-ws on the same path. GraphiQL sends the
// headers of its Headers tab with every request and, on a websocket, as the
// connection_init payload, where the server reads "Authorization" too.
//
// This is a file rather than an inline script so that the page's
// Content-Security-Policy allows scripts from this origin only.
(function () {
  'use strict';

  var endpoint = '/graphql';
  var wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: location.protocol + '//' + location.host + endpoint,
    subscriptionUrl: wsScheme + '//' + location.host + endpoint,
  });

  var defaultQuery = [
    '# QChat\'s GraphQL API: the Docs button',
    '# lists every type and field, and',
    '# docs/PROTOCOL.md says what they mean.',
    '#',
    '# Signed in? Put this in Headers below:',
    '#   {"Authorization": "Bearer <token>"}',
    '# (register and login return the token).',
    '# Without it, me is null.',
    '',
    'query Me {',
    '  me {',
    '    id',
    '    username',
    '    publicKey { id algorithm fingerprint }',
    '  }',
    '}',
    '',
  ].join('\n');

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    }),
  );
})();
