"""The answering core: sentences judged against the question, quoted with their citations,
or "not in the articles"; the optional LLM answer whose claims are checked against quotes."""
