"""QuantaMechInterp's own UsefulNodeList.load_nodes, sort_nodes and save_nodes on a file: what QMI reads from our
export and writes back. Usage: python3 qmi_roundtrip.py IN.json OUT.json. Prints the node names with their tags."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'qmi'))
from useful_node import UsefulNodeList  # noqa: E402

nodes = UsefulNodeList()
nodes.load_nodes(sys.argv[1])
nodes.sort_nodes()
nodes.save_nodes(sys.argv[2])
nodes.print_node_tags()
