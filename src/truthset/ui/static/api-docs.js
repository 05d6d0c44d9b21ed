// Starts the vendored Swagger UI on /api/v1/docs (an inline script would break the page's CSP).
const root = document.getElementById('swagger-ui');

window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  validatorUrl: null, // its badge is an image from validator.swagger.io: nothing leaves this server
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
