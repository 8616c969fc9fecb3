-- Approximate nearest-neighbour index for "similar products" (cosine distance).
-- Built in the background after the app starts serving: it takes tens of seconds for 44,000 vectors.
CREATE INDEX IF NOT EXISTS product_image_embeddings_hnsw
    ON {{schema}}.product_image_embeddingsdb USING hnsw (image_embedding vector_cosine_ops);
