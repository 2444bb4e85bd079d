"""Workflows that measure in order to judge or fill a LUT: validation against whole networks
(chain spaces) and subnets (elastic spaces), and a sampled LUT whose gaps a block predictor
fills. They sit above ``predictors`` (they fit its models) and beside ``search``;
``lutfarm.api`` calls them."""
