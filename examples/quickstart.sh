#!/usr/bin/env bash
# The main job on the embedded default: bundled model, embedded Chroma, bundled data.
# An agent learns banking intents, then travel intents, and is checked for forgetting.
set -euo pipefail
cd "$(dirname "$0")/.."
export AGENT_IL_HOME="${AGENT_IL_HOME:-./.agent-il-quickstart}"
data=examples/data/quickstart

rm -rf "$AGENT_IL_HOME"
agent-il init
agent-il learn "$data/banking.csv" --task banking --holdout 0.2
agent-il learn "$data/travel.csv" --task travel --holdout 0.2
agent-il predict "i want to pay my water bill now" "what plug do i need in london" "my card got blocked" "tell me a joke"
agent-il evaluate --plot "$AGENT_IL_HOME/forgetting.png"
agent-il evaluate "$data/test.csv"
agent-il status
