// Starts Swagger UI (/docs) or Redoc (/redoc) on the OpenAPI document. Their bundles come from
// this origin (/docs-assets); this file only exists because the pages allow no inline script.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-openapi-url") || "/openapi.json";
  var swagger = document.getElementById("swagger-ui");
  if (swagger && window.SwaggerUIBundle) {
    window.SwaggerUIBundle({
      url: url,
      dom_id: "#swagger-ui",
      deepLinking: true,
      layout: "BaseLayout",
      presets: [window.SwaggerUIBundle.presets.apis],
      // The default asks validator.swagger.io about the document: another origin.
      validatorUrl: null,
    });
  }
  var redoc = document.getElementById("redoc");
  if (redoc && window.Redoc) {
    // Redoc writes its styles into <style> elements; the page's CSP lets in those with this nonce.
    // nativeScrollbars: the perfect-scrollbar styles the bundle writes while loading carry no
    // nonce (the browser refuses them), so Redoc uses the browser's own scrollbars.
    window.Redoc.init(
      url,
      { nonce: document.body.getAttribute("data-style-nonce") || undefined, nativeScrollbars: true },
      redoc
    );
  }
})();
