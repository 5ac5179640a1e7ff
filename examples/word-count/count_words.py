"""One job per file of the folder: DeskGrid passes the file's path as the last argument.

Prints a JSON object (it becomes the job's value) and writes the most frequent words to a
file in DESKGRID_OUTPUT_DIR, which comes back under outputs/<index>/.
Run: npx deskgrid run examples/word-count/count_words.py examples/word-count/texts
"""

import collections
import json
import os
import re
import sys

path = sys.argv[-1]
with open(path, encoding="utf-8") as handle:
    words = re.findall(r"[a-z']+", handle.read().lower())

common = collections.Counter(words).most_common(5)
with open(os.path.join(os.environ["DESKGRID_OUTPUT_DIR"], "top-words.txt"), "w", encoding="utf-8") as out:
    for word, count in common:
        out.write(f"{word}\t{count}\n")

print(json.dumps({"file": os.path.basename(path), "words": len(words), "top": common[0][0] if common else None}))
