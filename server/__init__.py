"""HTTP server: FastAPI + LangServe around the weather agent."""
