"""KFP pipelines that wire the components of distml.components."""
