"""Datasets: token sequences from files, text, generators and behaviour languages (above infra and compression).

==================  ===============================================================
``sequences``       :class:`TokenSequences`: token sequences as one flat array and offsets
``readers``         text, JSONL, CSV, Parquet, Arrow and compressed files, streamed
``formats``         which format an input is; folders, datasets folders, checked decompression
``records``         the record path: each format's records with their file:line
``columnar``        the column path: a top-level text field as Arrow columns, record path as fallback
``text``            tokenizing text with a tokenizer file or folder, recorded
``synthetic``       the built-in synthetic sources (exact Pareto leaf masses)
``scenario``        the Theorem 4.2 scenario: D_p = D_1 u D_2 u D_3, D_a, D_t
``chat``            prompt/response pairs and chats tokenized with a chat template; loss masks
``language``        the synthetic behaviour language (four axes, exact labels)
``behaviour``       behaviour scorers: exact rules, VADER, any callable
``sources``         a behaviour experiment's data: synthetic, tweets, or the user's JSONL files
==================  ===============================================================
"""
