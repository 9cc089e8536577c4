"""Reduce-side join of two CSV inputs on the customer id, each row tagged by its source.

customers.csv has `id,name`, orders.csv has `customer_id,item,amount`; the mapper tags each row
with where it came from, the reducer meets a customer's row and orders under the same key and emits
one joined record per order (an inner join; orders of unknown customers are counted, not emitted).

Make the two files with datasets/generate.py (in out/, which git ignores), then join them:

    python datasets/generate.py --kind join --output out/data/join
    mapreduce run jobs/join.py out/data/join/customers.csv out/data/join/orders.csv --output out/joined
"""

import os

import mapreduce

INPUT_FORMAT = "csv"


def mapper(path, row):
    if os.path.basename(path).startswith("customers"):
        yield str(row["id"]), ("customer", row["name"])
    else:
        yield str(row["customer_id"]), ("order", row["item"], row["amount"])


def reducer(customer_id, tagged):
    name, orders = None, []
    for record in tagged:
        if record[0] == "customer":
            name = record[1]
        else:
            orders.append(record[1:])
    if name is None:
        mapreduce.counter("join", "orders without customer", len(orders))
        return
    for item, amount in sorted(orders):
        yield customer_id, {"customer": name, "item": item, "amount": amount}
