"""`citebot eval`: measures retrieval and citations on question-answering sets.

readers -> sampling -> runner (index + questions) -> metrics -> command.
"""
