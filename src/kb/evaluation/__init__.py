"""`kb eval`: retrieval and answer quality measured on a user's own labelled questions.

datasets   read the files (BEIR queries and qrels, QA JSONL)
corpus     map a document of the KB to the corpus id the files use
metrics    nDCG, recall, MRR; SQuAD-style answer containment and token F1
retrieval  run the search modes, pool chunks to documents, score
answers    run `ask` through the provider chain, score, add up latency, tokens, cost
"""
