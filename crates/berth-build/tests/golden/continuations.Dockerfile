FROM busybox
# a comment before the step
RUN echo one \
    # a comment inside the continuation
    two \

    three
   RUN   echo indented   
run echo lower case keyword
RUN echo trailing backslash escaped \\
RUN echo \
