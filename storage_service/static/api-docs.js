// The API docs page (/docs): FastAPI's Swagger UI set-up, moved out of an inline script so
// the page runs under the same no-inline-script CSP as the rest of the service.
"use strict";
SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
