"""Request handlers by area: parse input, call one service, render."""
