"""OpenAPI bridges: describe a REST adapter as OpenAPI 3.1 (:mod:`.export`) and turn an
OpenAPI/Swagger document into a runnable capability (:mod:`.importer`)."""
