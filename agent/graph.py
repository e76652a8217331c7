"""The weather agent: a tool-calling loop (model -> tools -> model ...) as a LangGraph graph.

`build_graph()` is the factory used by the server, tests and notebooks; `make_graph()` (no
checkpointer, sessions rolling over in place) is what `langgraph.json` points at.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.base import BaseStore

from agent.config import AgentSettings
from agent.facts import describe_facts, extract_facts
from agent.models import load_chat_model
from agent.prompts import SYSTEM_PROMPT, USER_FACTS_PROMPT
from agent.state import AgentState
from agent.tools import build_tools
from agent.weather import WeatherSource, make_weather_source
from session_policy.config import SessionSettings
from session_policy.models import SessionLimits
from session_policy.policy import CLOSE_NODE, GATE_NODE, SessionContext, SessionPolicy

log = logging.getLogger(__name__)

MODEL_NODE = "model"
TOOLS_NODE = "tools"


def _model_failure(error: Exception) -> dict[str, list[BaseMessage]]:
    log.exception("chat model call failed")
    return {
        "messages": [
            AIMessage(
                content="Sorry, I couldn't reach the language model to answer that "
                f"({type(error).__name__}). Please try again in a moment."
            )
        ]
    }


def _tool_failure(error: Exception) -> str:
    log.error("weather tool failed: %s: %s", type(error).__name__, error)
    return f"Sorry, the weather lookup failed unexpectedly ({type(error).__name__}: {error})."


def _stamped(message: BaseMessage) -> BaseMessage:
    """Record when the reply was made (shown by the history API; never sent to a model)."""
    message.response_metadata["timestamp"] = int(time.time() * 1000)
    return message


def _make_model_node(model: BaseChatModel, tools: list[Any]) -> RunnableLambda[Any, Any]:
    bound = model.bind_tools(tools)

    def prompt(state: AgentState) -> list[BaseMessage]:
        # No date of ours in the prompt: the tools count days in the place's own calendar.
        system = SYSTEM_PROMPT
        facts = describe_facts(state.get("user_facts") or {})
        if facts:
            system += USER_FACTS_PROMPT.format(facts=facts)
        return [SystemMessage(system), *state["messages"]]

    def call_model(state: AgentState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        try:
            return {"messages": [_stamped(bound.invoke(prompt(state), config))]}
        except GraphBubbleUp:
            raise
        except Exception as error:  # a model outage is an answer, not a crash
            return _model_failure(error)

    async def acall_model(
        state: AgentState, config: RunnableConfig
    ) -> dict[str, list[BaseMessage]]:
        try:
            return {"messages": [_stamped(await bound.ainvoke(prompt(state), config))]}
        except GraphBubbleUp:
            raise
        except Exception as error:
            return _model_failure(error)

    return RunnableLambda(call_model, afunc=acall_model, name=MODEL_NODE)


def route_after_model(state: AgentState) -> Literal["tools", "done"]:
    """Run the tools the model asked for, or finish the turn."""
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls:
        return "tools"
    return "done"


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    model: BaseChatModel | None = None,
    weather: WeatherSource | None = None,
    settings: AgentSettings | None = None,
    store: BaseStore | None = None,
    policy: SessionPolicy | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the weather agent.

    Anything not passed in comes from `settings` (by default the environment):
    `MODEL` picks the chat model and `WEATHER_PROVIDER` the weather source. With a
    `policy`, the session nodes wrap every turn: gate -> model <-> tools -> close.
    """
    settings = settings or AgentSettings()
    model = model or load_chat_model(settings)
    tools = build_tools(weather or make_weather_source(settings))

    builder = StateGraph(AgentState, context_schema=SessionContext)
    builder.add_node(MODEL_NODE, _make_model_node(model, tools))
    builder.add_node(TOOLS_NODE, ToolNode(tools, handle_tool_errors=_tool_failure))
    builder.add_edge(TOOLS_NODE, MODEL_NODE)
    if policy is None:
        builder.add_edge(START, MODEL_NODE)
        builder.add_conditional_edges(
            MODEL_NODE, route_after_model, {"tools": TOOLS_NODE, "done": END}
        )
    else:
        builder.add_node(GATE_NODE, policy.gate_node())
        builder.add_node(CLOSE_NODE, policy.close_node())
        builder.add_edge(START, GATE_NODE)
        builder.add_conditional_edges(
            GATE_NODE, policy.routes_after_gate, {"continue": MODEL_NODE, "__end__": END}
        )
        builder.add_conditional_edges(
            MODEL_NODE, route_after_model, {"tools": TOOLS_NODE, "done": CLOSE_NODE}
        )
        builder.add_edge(CLOSE_NODE, END)
    return builder.compile(checkpointer=checkpointer, store=store, name="weather-agent")


def standalone_policy() -> SessionPolicy:
    """The policy for the graph run on its own (`langgraph dev`): sessions roll over in place."""
    settings = SessionSettings()
    return SessionPolicy(
        SessionLimits.from_settings(settings),
        on_expiry="rollover",
        extract_facts=extract_facts,
        facts_ttl_s=settings.user_memory_ttl,
    )


@cache
def make_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph of `langgraph.json` (`langgraph dev`): built on first use, then reused.

    A factory rather than a module-level `graph`, so importing the package never reads the
    environment or fails on a bad setting.
    """
    return build_graph(policy=standalone_policy())
