"""EAP-IG's own Graph.from_json then Graph.to_json on a file: what EAP-IG reads from our export and writes back.

Usage: python3 eap_ig_roundtrip.py IN.json OUT.json
Runs the vendored eap_ig/graph.py (unchanged) with stand-ins for the imports the JSON path never calls
(einops.einsum is only used by prune() and edge counts; transformer_lens only for isinstance checks of models;
visualization only for to_image), so only torch is needed. Prints the graph's edge and node counts.
"""
import importlib.util
import os
import sys
import types

here = os.path.dirname(os.path.abspath(__file__))

einops = types.ModuleType('einops')
einops.einsum = None
sys.modules['einops'] = einops
lens = types.ModuleType('transformer_lens')
lens.HookedTransformer = type('HookedTransformer', (), {})
lens.HookedTransformerConfig = type('HookedTransformerConfig', (), {})
sys.modules['transformer_lens'] = lens
package = types.ModuleType('eap')
package.__path__ = [os.path.join(here, 'eap_ig')]
sys.modules['eap'] = package
visualization = types.ModuleType('eap.visualization')
visualization.get_color = visualization.generate_random_color = None
sys.modules['eap.visualization'] = visualization
spec = importlib.util.spec_from_file_location('eap.graph', os.path.join(here, 'eap_ig', 'graph.py'))
graph_module = importlib.util.module_from_spec(spec)
sys.modules['eap.graph'] = graph_module
spec.loader.exec_module(graph_module)

graph = graph_module.Graph.from_json(sys.argv[1])
graph.to_json(sys.argv[2])
print(f"edges {len(graph.edges)} in_graph {int(graph.in_graph.sum())} nodes_in_graph {int(graph.nodes_in_graph.sum())}")
