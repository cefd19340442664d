-- Sample schema for `pgvigil demo` and docker-compose: classified by classification/example.yaml.
-- The SSNs and card numbers are fake.
CREATE TABLE customers (
    id          int PRIMARY KEY,
    name        text NOT NULL,
    email       text,
    ssn         text,
    ssn_bidx    text,
    card_number text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
CREATE TABLE orders (
    id          int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    product_id  int NOT NULL REFERENCES products(id),
    quantity    int NOT NULL,
    ordered_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tickets (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), subject text, status text DEFAULT 'open');

INSERT INTO customers (id, name, email, ssn, card_number) VALUES
    (1, 'Ada Lovelace',   'ada@example.com',   '900-11-0001', '4111111111111111'),
    (2, 'Alan Turing',    'alan@example.com',  '900-11-0002', '5500000000000004'),
    (3, 'Grace Hopper',   'grace@example.com', '900-11-0003', '340000000000009'),
    (4, 'Edsger Dijkstra','edsger@example.com','900-11-0004', '6011000000000004');
INSERT INTO products VALUES (1, 'Notebook', 4.50), (2, 'Pencil', 0.90), (3, 'Slide rule', 39.00);
INSERT INTO orders (id, customer_id, product_id, quantity) VALUES (1, 1, 3, 1), (2, 2, 1, 4), (3, 3, 2, 12);
INSERT INTO tickets (customer_id, subject) VALUES (1, 'Card declined'), (4, 'Change of address');

-- Application roles named in classification/example.yaml `principals`.
CREATE ROLE app_backend LOGIN PASSWORD 'app_backend';
CREATE ROLE support_bot LOGIN PASSWORD 'support_bot';
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_backend;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO support_bot;
GRANT INSERT, UPDATE ON tickets TO support_bot;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_backend, support_bot;
